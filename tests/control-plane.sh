#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for the end-to-end tests and for trying the
# service locally: etcd, kube-apiserver and kube-controller-manager (job controller, garbage
# collector, service-account and TTL controllers). Pods are run by tests/node-sim.
#
#   tests/control-plane.sh install     install packages; build or reuse the binaries
#   tests/control-plane.sh up DIR      start everything with its state in DIR; writes DIR/env
#   tests/control-plane.sh down DIR    stop what `up DIR` started
#   tests/control-plane.sh stop-apiserver DIR | start-apiserver DIR   (fault-injection tests)
#
# The binaries are built from Debian's source package `kubernetes` (1.20, Go dependencies
# vendored), since nothing but Debian's packages can be fetched here, and cached under
# ~/.cache/submission-helper/kubernetes-<version>/ (about 10 minutes on 2 cores the first time).
set -euo pipefail

cache_root="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
log() { printf 'control-plane: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

apt_updated=""
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's source list, with deb-src next to deb, signed by the same keyring.
enable_sources() {
  local list=/etc/apt/sources.list.d/submission-helper-src.sources
  [ -f "$list" ] && return 0
  cat >"$list" <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt-get update -qq
  apt_updated=1
}

source_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

binaries_dir() {
  local version
  version=$(source_version)
  [ -n "$version" ] || die "apt knows no source package 'kubernetes'"
  printf '%s/kubernetes-%s/bin' "$cache_root" "$version"
}

install() {
  apt_install etcd-server openssl ca-certificates curl python3
  command -v kubectl >/dev/null || apt_install kubernetes-client
  enable_sources
  local bin
  bin=$(binaries_dir)
  if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ]; then
    log "using cached binaries in $bin"
    return 0
  fi
  apt_install golang-go rsync make dpkg-dev
  local build
  build=$(mktemp -d "$cache_root/build.XXXXXX")
  log "building kube-apiserver and kube-controller-manager in $build (about 10 minutes)"
  (
    cd "$build"
    apt-get source -qq kubernetes >/dev/null 2>&1 || apt-get source kubernetes
    local tree
    tree=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
    [ -n "$tree" ] || die "apt-get source produced no tree"
    export GOPATH="$build/go" GO111MODULE=off CGO_ENABLED=0 GOCACHE="$build/gocache"
    mkdir -p "$GOPATH/src/k8s.io"
    ln -s "$(cd "$tree" && pwd)" "$GOPATH/src/k8s.io/kubernetes"
    cd "$GOPATH/src/k8s.io/kubernetes"
    make generated_files >"$build/generate.log" 2>&1 || { tail -n 40 "$build/generate.log"; die "make generated_files failed"; }
    mkdir -p "$build/out"
    go build -o "$build/out/kube-apiserver" ./cmd/kube-apiserver
    go build -o "$build/out/kube-controller-manager" ./cmd/kube-controller-manager
  )
  mkdir -p "$(dirname "$bin")"
  rm -rf "$bin.tmp"
  mv "$build/out" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  rm -rf "$build"
  log "built into $bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until a command succeeds; fails after $1 seconds, or at once if the process whose pid
# is in $3 has died.
wait_for() {
  local seconds=$1 what=$2 pidfile=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
  log "$what is ready"
}

fail_with_log() {
  local dir=$1 component=$2
  log "$component did not start; last lines of its log:"
  tail -n 30 "$dir/$component.log" >&2 || true
  down "$dir"
  exit 1
}

certificates() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=submission-helper-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key \
      -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out service-accounts.key 2048 2>/dev/null
    openssl rsa -in service-accounts.key -pubout -out service-accounts.pub 2>/dev/null
  )
}

kubeconfig() {
  local file=$1 server=$2 ca=$3 token=$4
  cat >"$file" <<CONFIG
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: $server
      certificate-authority-data: $(base64 -w0 <"$ca")
users:
  - name: user
    user:
      token: $token
contexts:
  - name: local
    context:
      cluster: local
      user: user
      namespace: default
current-context: local
CONFIG
}

# Starts kube-apiserver with the arguments `up` recorded, and waits until it is ready. Also
# used to bring it back after `stop-apiserver` (fault-injection tests).
start_apiserver() {
  local dir=$1
  local args=()
  mapfile -t args <"$dir/kube-apiserver.args"
  "$(cat "$dir/kube-apiserver.bin")" "${args[@]}" >>"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  local probe=()
  mapfile -t probe <"$dir/kube-apiserver.probe"
  wait_for 120 kube-apiserver "$dir/kube-apiserver.pid" curl -fsS --cacert "$dir/ca.crt" \
    -H "Authorization: Bearer ${probe[1]}" "${probe[0]}/readyz" || fail_with_log "$dir" kube-apiserver
}

up() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local bin
  bin=$(binaries_dir)
  [ -x "$bin/kube-apiserver" ] || die "no binaries in $bin: run '$0 install' first"

  certificates "$dir"
  local admin_token controller_token
  admin_token=$(openssl rand -hex 16)
  controller_token=$(openssl rand -hex 16)
  {
    echo "$admin_token,admin,admin,system:masters"
    echo "$controller_token,system:kube-controller-manager,controller-manager"
  } >"$dir/tokens.csv"

  local etcd_port etcd_peer api_port cm_port
  etcd_port=$(free_port)
  etcd_peer=$(free_port)
  api_port=$(free_port)
  cm_port=$(free_port)

  etcd --data-dir "$dir/etcd" --name test \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "test=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync \
    >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for 60 etcd "$dir/etcd.pid" curl -fsS "http://127.0.0.1:$etcd_port/health" || fail_with_log "$dir" etcd

  cat >"$dir/kube-apiserver.args" <<ARGS
--etcd-servers=http://127.0.0.1:$etcd_port
--bind-address=127.0.0.1
--advertise-address=127.0.0.1
--secure-port=$api_port
--tls-cert-file=$dir/apiserver.crt
--tls-private-key-file=$dir/apiserver.key
--client-ca-file=$dir/ca.crt
--token-auth-file=$dir/tokens.csv
--authorization-mode=Node,RBAC
--service-account-key-file=$dir/service-accounts.pub
--service-account-signing-key-file=$dir/service-accounts.key
--service-account-issuer=https://kubernetes.default.svc
--service-cluster-ip-range=10.0.0.0/24
--kubelet-preferred-address-types=InternalIP
--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultTolerationSeconds,ResourceQuota
--feature-gates=TTLAfterFinished=true
--allow-privileged=false
ARGS
  echo "$bin/kube-apiserver" >"$dir/kube-apiserver.bin"
  printf '%s\n%s\n' "https://127.0.0.1:$api_port" "$admin_token" >"$dir/kube-apiserver.probe"
  start_apiserver "$dir"
  local server="https://127.0.0.1:$api_port"

  kubeconfig "$dir/kubeconfig" "$server" "$dir/ca.crt" "$admin_token"
  kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$dir/ca.crt" "$controller_token"

  "$bin/kube-controller-manager" \
    --kube-api-qps 200 --kube-api-burst 400 \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cm_port" --port 0 \
    --leader-elect=false \
    --controllers '*' \
    --use-service-account-credentials \
    --service-account-private-key-file "$dir/service-accounts.key" \
    --root-ca-file "$dir/ca.crt" \
    --feature-gates TTLAfterFinished=true \
    >"$dir/kube-controller-manager.log" 2>&1 &
  echo $! >"$dir/kube-controller-manager.pid"
  wait_for 120 "the default service account" "$dir/kube-controller-manager.pid" \
    kubectl --kubeconfig "$dir/kubeconfig" get serviceaccount default -n default \
    || fail_with_log "$dir" kube-controller-manager

  cat >"$dir/env" <<ENV
export KUBECONFIG=$dir/kubeconfig
export SH_TEST_APISERVER=$server
export SH_TEST_ADMIN_TOKEN=$admin_token
export SH_TEST_CONTROL_PLANE_DIR=$dir
ENV
  log "up: $server (kubeconfig $dir/kubeconfig)"
}

stop_pid() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  for component in kube-controller-manager kube-apiserver etcd; do
    stop_pid "$dir/$component.pid"
  done
}

case "${1:-}" in
  install) install ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; down "$2" ;;
  stop-apiserver) [ $# -eq 2 ] || die "usage: $0 stop-apiserver DIR"; stop_pid "$2/kube-apiserver.pid" ;;
  start-apiserver) [ $# -eq 2 ] || die "usage: $0 start-apiserver DIR"; start_apiserver "$2" ;;
  *) die "usage: $0 install | up DIR | down DIR | stop-apiserver DIR | start-apiserver DIR" ;;
esac
