#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for the end-to-end tests and for trying the
# service locally: etcd, kube-apiserver and kube-controller-manager (job controller, garbage
# collector, service-account, TTL and node lifecycle controllers), and a kubectl of the same
# release. Pods are run by tests/node-sim, or by a real kubelet and kube-scheduler of the same
# release that tests/real-node.sh starts (`up` writes their credentials too).
#
#   tests/control-plane.sh install     build the binaries, or reuse the cached ones
#   tests/control-plane.sh install --no-node   the same without kubelet and kube-scheduler
#   tests/control-plane.sh install --kueue     the same and Kueue (tests/control-plane/kueue.sh)
#   tests/control-plane.sh up DIR      start everything with its state in DIR; writes DIR/env
#   tests/control-plane.sh down DIR    stop what `up DIR` started
#   tests/control-plane.sh version     print the Kubernetes version `install` builds
#   tests/control-plane.sh bin         print the folder of its binaries
#   tests/control-plane.sh prune VERSION...   remove cached releases other than these
#   tests/control-plane.sh stop-apiserver DIR | start-apiserver DIR   (fault-injection tests)
#   tests/control-plane.sh kueue-up DIR | kueue-down DIR   Kueue against the control plane of DIR
#   tests/control-plane.sh kueue-version   print the Kueue version `install --kueue` builds
#
# Kubernetes is built from the k8s.io/kubernetes module and etcd from go.etcd.io/etcd/server,
# both fetched through the Go module proxy by a small build module (tests/control-plane/) that
# pins each k8s.io staging module to the release's matching v0.X.Y. The binaries are cached
# under ~/.cache/submission-helper/kubernetes-<version>/ and etcd-<version>/ (the first build
# takes about 15 minutes on 2 cores, kubelet and kube-scheduler about 4 more; Go's module and
# build caches are kept beside them, so a missing binary alone is built again).
set -euo pipefail

KUBERNETES_VERSION="${SH_KUBERNETES_VERSION:-1.37.2}"
ETCD_VERSION="${SH_ETCD_VERSION:-3.7.0}"
# The name of the one real node a kubelet may register (tests/real-node.sh): the API server's
# Node authorizer lets it read only what that node's pods use.
NODE_NAME=local-node

here=$(cd "$(dirname "$0")" && pwd)
cache_root="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
log() { printf 'control-plane: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=control-plane/kueue.sh
source "$here/control-plane/kueue.sh"

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

binaries_dir() { printf '%s/kubernetes-%s/bin' "$cache_root" "$KUBERNETES_VERSION"; }
etcd_dir() { printf '%s/etcd-%s/bin' "$cache_root" "$ETCD_VERSION"; }

# Go from PATH; a Go older than a build module asks for is replaced by the toolchain the module
# names, which the go command itself fetches through the module proxy (GOTOOLCHAIN=auto).
go_env() {
  command -v go >/dev/null || apt_install golang-go
  command -v go >/dev/null || die "no go command"
  export GOMODCACHE="$cache_root/go/mod" GOCACHE="$cache_root/go/build" GOTOOLCHAIN=auto \
    GOFLAGS=-mod=mod CGO_ENABLED=0
}

# Writes a build module in $1 that requires module $2 at $3 and replaces each module listed in
# that module's own `replace` block (local paths there, which a dependency cannot use) by the
# published module at the version `$4` maps it to.
build_module() {
  local dir=$1 module=$2 version=$3 replacement=$4
  mkdir -p "$dir"
  printf 'module submission-helper/control-plane\n\ngo 1.26.0\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
  (cd "$dir" && go mod download -json "$module@$version" >/dev/null)
  local mod="$GOMODCACHE/cache/download/$module/@v/$version.mod"
  [ -f "$mod" ] || die "the module proxy gave no go.mod for $module@$version"
  {
    echo
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$mod" | awk -v v="$replacement" '$2 == "=>" { printf "\t%s => %s %s\n", $1, $1, v }'
    echo ")"
  } >>"$dir/go.mod"
}

# Builds the commands named after $2 (kube-apiserver, kubelet...) of k8s.io/kubernetes into $1.
build_kubernetes() {
  local out=$1 build=$2
  shift 2
  local commands=()
  for command in "$@"; do commands+=("k8s.io/kubernetes/cmd/$command"); done
  local minor=${KUBERNETES_VERSION#*.}
  minor=${minor%%.*}
  build_module "$build/kubernetes" k8s.io/kubernetes "v$KUBERNETES_VERSION" "v0.${KUBERNETES_VERSION#*.}"
  local ldflags="-s -w"
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $package.gitVersion=v$KUBERNETES_VERSION -X $package.gitMajor=1"
    ldflags+=" -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
  done
  cp "$here/control-plane/tools.go" "$build/kubernetes/"
  (
    cd "$build/kubernetes"
    go mod tidy >"$build/tidy.log" 2>&1 || { tail -n 30 "$build/tidy.log"; exit 1; }
    go build -trimpath -ldflags "$ldflags" -o "$out/" "${commands[@]}"
  )
}

build_etcd() {
  local out=$1 build=$2
  shift 2
  build_module "$build/etcd" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" "v$ETCD_VERSION"
  (
    cd "$build/etcd"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy >"$build/tidy-etcd.log" 2>&1 || { tail -n 30 "$build/tidy-etcd.log"; exit 1; }
    go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  )
}

# Builds the binaries named after $3 that $bin lacks, into a temporary folder, and moves them
# into place only when the build is whole, so an interrupted build never leaves a cache entry
# that looks complete.
cached_build() {
  local what=$1 bin=$2 builder=$3
  shift 3
  local missing=() file
  for file in "$@"; do [ -x "$bin/$file" ] || missing+=("$file"); done
  if [ ${#missing[@]} -eq 0 ]; then
    log "using cached $what in $bin"
    return 0
  fi
  go_env
  local build
  build=$(mktemp -d "$cache_root/build.XXXXXX")
  log "building $what (${missing[*]}) in $build"
  local started=$SECONDS
  "$builder" "$build/out" "$build" "${missing[@]}" || { rm -rf "$build"; die "building $what failed"; }
  mkdir -p "$bin"
  for file in "${missing[@]}"; do mv "$build/out/$file" "$bin/$file"; done
  rm -rf "$build"
  log "built ${missing[*]} of $what into $bin in $((SECONDS - started)) s"
}

install() {
  local commands=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler)
  local kueue=""
  case "${1:-}" in
    "") ;;
    --no-node) commands=(kube-apiserver kube-controller-manager kubectl) ;;
    --kueue) kueue=1 ;;
    *) die "usage: $0 install [--no-node | --kueue]" ;;
  esac
  mkdir -p "$cache_root"
  apt_install openssl ca-certificates curl python3 procps
  cached_build "etcd $ETCD_VERSION" "$(etcd_dir)" build_etcd etcd
  cached_build "Kubernetes $KUBERNETES_VERSION" "$(binaries_dir)" build_kubernetes "${commands[@]}"
  [ -z "$kueue" ] || install_kueue
}

# Removes the cached binaries of every Kubernetes release but those named, and of every etcd
# release but this script's.
prune() {
  local keep folder version
  for folder in "$cache_root"/kubernetes-*; do
    [ -d "$folder" ] || continue
    version=${folder##*/kubernetes-}
    keep=""
    for wanted in "$@"; do [ "$version" = "$wanted" ] && keep=1; done
    [ -n "$keep" ] || { log "removing $folder"; rm -rf "$folder"; }
  done
  for folder in "$cache_root"/etcd-*; do
    [ -d "$folder" ] && [ "$folder" != "$cache_root/etcd-$ETCD_VERSION" ] && { log "removing $folder"; rm -rf "$folder"; }
  done
  for folder in "$cache_root"/kueue-*; do
    [ -d "$folder" ] && [ "$folder" != "$(kueue_dir)" ] && { log "removing $folder"; rm -rf "$folder"; }
  done
  return 0
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
  local bin etcd_bin
  bin=$(binaries_dir)
  etcd_bin=$(etcd_dir)
  [ -x "$bin/kube-apiserver" ] && [ -x "$etcd_bin/etcd" ] || die "no binaries in $bin: run '$0 install' first"

  certificates "$dir"
  local admin_token controller_token scheduler_token node_token
  admin_token=$(openssl rand -hex 16)
  controller_token=$(openssl rand -hex 16)
  scheduler_token=$(openssl rand -hex 16)
  node_token=$(openssl rand -hex 16)
  {
    echo "$admin_token,admin,admin,system:masters"
    echo "$controller_token,system:kube-controller-manager,controller-manager"
    echo "$scheduler_token,system:kube-scheduler,kube-scheduler"
    echo "$node_token,system:node:$NODE_NAME,$NODE_NAME,system:nodes"
  } >"$dir/tokens.csv"

  local etcd_port etcd_peer api_port cm_port
  etcd_port=$(free_port)
  etcd_peer=$(free_port)
  api_port=$(free_port)
  cm_port=$(free_port)

  "$etcd_bin/etcd" --data-dir "$dir/etcd" --name test \
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
--endpoint-reconciler-type=none
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
--allow-privileged=false
ARGS
  echo "$bin/kube-apiserver" >"$dir/kube-apiserver.bin"
  printf '%s\n%s\n' "https://127.0.0.1:$api_port" "$admin_token" >"$dir/kube-apiserver.probe"
  start_apiserver "$dir"
  local server="https://127.0.0.1:$api_port"

  kubeconfig "$dir/kubeconfig" "$server" "$dir/ca.crt" "$admin_token"
  kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$dir/ca.crt" "$controller_token"
  kubeconfig "$dir/kube-scheduler.kubeconfig" "$server" "$dir/ca.crt" "$scheduler_token"
  kubeconfig "$dir/kubelet.kubeconfig" "$server" "$dir/ca.crt" "$node_token"

  "$bin/kube-controller-manager" \
    --kube-api-qps 200 --kube-api-burst 400 \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cm_port" \
    --leader-elect=false \
    --controllers '*' \
    --use-service-account-credentials \
    --service-account-private-key-file "$dir/service-accounts.key" \
    --root-ca-file "$dir/ca.crt" \
    >"$dir/kube-controller-manager.log" 2>&1 &
  echo $! >"$dir/kube-controller-manager.pid"
  wait_for 120 "the default service account" "$dir/kube-controller-manager.pid" \
    "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get serviceaccount default -n default \
    || fail_with_log "$dir" kube-controller-manager

  cat >"$dir/env" <<ENV
export PATH=$bin:\$PATH
export KUBECONFIG=$dir/kubeconfig
export KUBECACHEDIR=$dir/kubectl-cache
export SH_TEST_KUBERNETES_VERSION=v$KUBERNETES_VERSION
export SH_TEST_APISERVER=$server
export SH_TEST_ADMIN_TOKEN=$admin_token
export SH_TEST_CONTROL_PLANE_DIR=$dir
ENV
  log "up: $server (kubeconfig $dir/kubeconfig)"
}

# Whether process $1 runs: not gone, nor a zombie (what `up` started is reaped by nobody once
# `up` has ended, where the machine's first process does not reap).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ "$state" != Z* ]]
}

stop_pid() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      alive "$pid" || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  kueue_down "$dir"
  for component in kube-controller-manager kube-apiserver etcd; do
    stop_pid "$dir/$component.pid"
  done
}

case "${1:-}" in
  install) [ $# -le 2 ] || die "usage: $0 install [--no-node | --kueue]"; install "${2:-}" ;;
  version) echo "v$KUBERNETES_VERSION" ;;
  kueue-version) echo "v$KUEUE_VERSION" ;;
  bin) binaries_dir; echo ;;
  prune) shift; prune "$@" ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; down "$2" ;;
  stop-apiserver) [ $# -eq 2 ] || die "usage: $0 stop-apiserver DIR"; stop_pid "$2/kube-apiserver.pid" ;;
  start-apiserver) [ $# -eq 2 ] || die "usage: $0 start-apiserver DIR"; start_apiserver "$2" ;;
  kueue-up) [ $# -eq 2 ] || die "usage: $0 kueue-up DIR"; kueue_up "$2" ;;
  kueue-down) [ $# -eq 2 ] || die "usage: $0 kueue-down DIR"; kueue_down "$2" ;;
  *) die "usage: $0 install [--no-node | --kueue] | version | bin | prune VERSION... | up DIR | down DIR | stop-apiserver DIR | start-apiserver DIR | kueue-up DIR | kueue-down DIR | kueue-version" ;;
esac
