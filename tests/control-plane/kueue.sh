# Kueue (sigs.k8s.io/kueue) beside the local control plane, for the suites that submit through
# it; sourced by tests/control-plane.sh (`install --kueue`, `kueue-up DIR`, `kueue-down DIR`).
#
# Kueue is built from its Go module like Kubernetes (about 10 minutes on 2 cores) and cached in
# ~/.cache/submission-helper/kueue-<version>/. `kueue-up` runs it against the control plane of
# DIR as an outside process would run in a cluster: its CRDs applied, leader election and
# internal certificate management off, only the batch/job integration, its webhooks served on
# 127.0.0.1 with a certificate of the control plane's CA and registered with that CA, and its
# visibility server on a loopback port (DIR/kueue/env names it). Kueue reads its metrics and
# visibility certificates from fixed paths (/etc/kueue/metrics/certs, /visibility): it runs in
# a mount namespace of its own where DIR's certificates are mounted there, so the machine keeps
# only the two empty mount points. Kueue's Job webhook fails closed: `kueue-down` removes the
# webhooks before it stops Kueue, so that Jobs can be created again.

KUEUE_VERSION="${SH_KUEUE_VERSION:-0.19.2}"
KUEUE_WEBHOOKS=(submission-helper-kueue-mutating submission-helper-kueue-validating)

kueue_dir() { printf '%s/kueue-%s' "$cache_root" "$KUEUE_VERSION"; }

# Builds Kueue's manager into $1/kueue, and copies its CRDs and webhook manifests from the
# module into $1/config.
build_kueue() {
  local out=$1 build=$2
  mkdir -p "$build/kueue" "$out/config/crds"
  (
    cd "$build/kueue"
    printf 'module submission-helper/kueue\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kueue v%s\n' "$KUEUE_VERSION" >go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kueue/cmd/kueue"\n' >tools.go
    go mod tidy >"$build/tidy-kueue.log" 2>&1 || { tail -n 30 "$build/tidy-kueue.log"; exit 1; }
    go build -trimpath -ldflags "-s -w" -o "$out/kueue" sigs.k8s.io/kueue/cmd/kueue
  )
  local source="$GOMODCACHE/sigs.k8s.io/kueue@v$KUEUE_VERSION"
  cp "$source"/config/components/crd/bases/*.yaml "$out/config/crds/"
  cp "$source/config/components/webhook/manifests.yaml" "$out/config/webhooks.yaml"
}

install_kueue() {
  cached_build "Kueue $KUEUE_VERSION" "$(kueue_dir)" build_kueue kueue config
}

# Writes the webhook configurations of the Job integration and of Kueue's own kinds, pointed at
# $2 (https://127.0.0.1:PORT) and trusting the CA in $3, from Kueue's manifests in $1 (as the
# JSON objects, one after another, `kubectl create --dry-run=client -o json` makes of them).
kueue_webhooks() {
  python3 - "$1" "$2" "$3" "${KUEUE_WEBHOOKS[@]}" <<'PY'
import base64, json, sys
manifests, url, ca, mutating, validating = sys.argv[1:6]
bundle = base64.b64encode(open(ca, "rb").read()).decode()
names = {"MutatingWebhookConfiguration": mutating, "ValidatingWebhookConfiguration": validating}
text, docs, at = open(manifests).read(), [], 0
while text[at:].strip():
    doc, at = json.JSONDecoder().raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
    docs.append(doc)
out = []
for doc in docs:
    kept = []
    for hook in doc.get("webhooks", []):
        path = hook["clientConfig"]["service"]["path"]
        if "-batch-v1-job" in path or "-kueue-x-k8s-io-" in path:
            hook["clientConfig"] = {"url": url + path, "caBundle": bundle}
            hook["namespaceSelector"] = {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "kueue-system"]}]}
            kept.append(hook)
    doc["metadata"] = {"name": names[doc["kind"]]}
    doc["webhooks"] = kept
    out.append(doc)
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": out}))
PY
}

# Signs a serving certificate for 127.0.0.1 with the control plane's CA into $1/tls.{crt,key}.
kueue_certificate() {
  local dir=$1 ca_dir=$2
  mkdir -p "$dir"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kueue" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/san.ext" -out "$dir/tls.crt" 2>/dev/null
  cp "$ca_dir/ca.crt" "$dir/ca.crt"
}

kueue_up() {
  local dir=$1
  dir=$(cd "$dir" && pwd)
  local bin config kubectl state="$dir/kueue"
  bin="$(kueue_dir)/kueue"
  config="$(kueue_dir)/config"
  [ -x "$bin" ] && [ -f "$config/webhooks.yaml" ] || die "no Kueue in $(kueue_dir): run '$0 install --kueue' first"
  kubectl=("$(binaries_dir)/kubectl" --kubeconfig "$dir/kubeconfig")
  mkdir -p "$state"
  for part in webhook metrics visibility; do kueue_certificate "$state/certs/$part" "$dir"; done

  "${kubectl[@]}" create namespace kueue-system --dry-run=client -o yaml | "${kubectl[@]}" apply -f - >/dev/null
  "${kubectl[@]}" apply --server-side -f "$config/crds" >/dev/null
  "${kubectl[@]}" wait --for condition=established --timeout 60s -f "$config/crds" >/dev/null

  local webhook_port health_port metrics_port visibility_port
  webhook_port=$(free_port)
  health_port=$(free_port)
  metrics_port=$(free_port)
  visibility_port=$(free_port)
  cat >"$state/config.yaml" <<CONFIG
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:$health_port
metrics:
  bindAddress: 127.0.0.1:$metrics_port
webhook:
  host: 127.0.0.1
  port: $webhook_port
  certDir: $state/certs/webhook
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
visibilityServer:
  bindAddress: 127.0.0.1
  bindPort: $visibility_port
integrations:
  frameworks:
    - batch/job
CONFIG

  # The fixed paths Kueue reads, as mount points: empty on the machine, DIR's inside Kueue's
  # mount namespace.
  mkdir -p /etc/kueue/metrics/certs /visibility
  unshare --mount --propagation private -- bash -c '
    mount --bind "$1/certs/metrics" /etc/kueue/metrics/certs &&
    mount --bind "$1/certs/visibility" /visibility &&
    exec "$2" --config "$1/config.yaml" --kubeconfig "$3" --zap-log-level=2' \
    kueue "$state" "$bin" "$dir/kubeconfig" >"$dir/kueue.log" 2>&1 &
  echo $! >"$dir/kueue.pid"
  wait_for 120 Kueue "$dir/kueue.pid" curl -fsS "http://127.0.0.1:$health_port/readyz" \
    || fail_with_log "$dir" kueue
  "${kubectl[@]}" create --dry-run=client -o json -f "$config/webhooks.yaml" >"$state/manifests.json"
  kueue_webhooks "$state/manifests.json" "https://127.0.0.1:$webhook_port" "$dir/ca.crt" >"$state/webhooks.json"
  "${kubectl[@]}" apply -f "$state/webhooks.json" >/dev/null
  # Ready once the webhook answers through the API server: a dry-run of a queue-labelled Job.
  wait_for 60 "Kueue's Job webhook" "$dir/kueue.pid" "${kubectl[@]}" create job kueue-probe \
    --image=probe --dry-run=server -n default -- true
  cat >"$state/env" <<ENV
export SH_TEST_KUEUE=1
export SH_TEST_KUEUE_VERSION=v$KUEUE_VERSION
export SH_TEST_KUEUE_VISIBILITY_URL=https://127.0.0.1:$visibility_port
ENV
  log "Kueue $KUEUE_VERSION up (visibility server https://127.0.0.1:$visibility_port; log $dir/kueue.log)"
}

kueue_down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/kubeconfig" ] && [ -x "$(binaries_dir)/kubectl" ]; then
    "$(binaries_dir)/kubectl" --kubeconfig "$dir/kubeconfig" delete --ignore-not-found --wait=false \
      "mutatingwebhookconfiguration/${KUEUE_WEBHOOKS[0]}" \
      "validatingwebhookconfiguration/${KUEUE_WEBHOOKS[1]}" >/dev/null 2>&1 || true
  fi
  stop_pid "$dir/kueue.pid"
}
