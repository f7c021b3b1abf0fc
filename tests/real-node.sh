#!/usr/bin/env bash
# A real Kubernetes node for the end-to-end tests, with everything it talks to, inside a network
# namespace of its own: the control plane of tests/control-plane.sh, a kube-scheduler and a
# kubelet of the same release, Debian's containerd, runc and CNI bridge plugins, a private
# registry (Debian's docker-registry, behind a password and TLS) holding the images the tests
# run, and a Postgres server. The tests run in that namespace too (`run`): nothing is added to
# the machine's own network, and nothing outside the namespace is reachable from it.
#
#   tests/real-node.sh install         Debian's packages the node needs (the kubelet and
#                                      kube-scheduler come from tests/control-plane.sh install)
#   tests/real-node.sh up DIR          start everything with its state in DIR; writes DIR/env
#   tests/real-node.sh run DIR CMD...  run CMD inside the namespace, with DIR/env sourced (and
#                                      the caller's environment, which DIR/env overrides)
#   tests/real-node.sh down DIR        stop and remove what `up DIR` started and made
#
# The images are built without a container engine: umoci lays out an OCI image, skopeo pushes
# it. The pause image is a static build of tests/real-node/pause.c, imported into containerd
# (no registry here has one); the payload image is busybox-static with Debian's bash and its
# libraries, and the files of tests/real-node/payload/ for a user `atlas` whose .bashrc sets up
# the environment, as the CAF images are built (`bash -cl` reads it). The registry also holds
# the Snakemake workflow test's image (Debian with Python and Snakemake; tests/tes/snakemake.sh).
#
# What this machine asks of a node: the kubelet must accept cgroup v1 (`failCgroupV1: false`);
# containerd must not try to lower OOM scores (`restrict_oom_score_adj`); the node's address
# must not be a loopback one (it is on a veth link made in the namespace). The kubelet sets a
# few kernel settings (vm.overcommit_memory, kernel.panic...): `down` puts back what `up` found.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'real-node: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Addresses inside the namespace only: the node's, and its pods' subnet on the CNI bridge.
NODE_IP=10.213.0.1
POD_SUBNET=10.213.128.0/24
REGISTRY="$NODE_IP:5000"
REGISTRY_USER=analyst
PAUSE_IMAGE="$REGISTRY/pause:3.10"
PAYLOAD_IMAGE="$REGISTRY/caf-k8s/cafexample:1"
# The executors' image of the Snakemake workflow test (tests/tes/snakemake.sh builds it).
SNAKEMAKE_IMAGE="$REGISTRY/snakemake/snakemake:9.27.1"
PACKAGES=(containerd runc containernetworking-plugins docker-registry apache2-utils umoci skopeo
  busybox-static gcc libc6-dev openssl iproute2 util-linux procps curl python3 debootstrap)
# What the kubelet changes outside any namespace; saved by `up`, restored by `down`.
KERNEL_SETTINGS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# Folders outside DIR that the kubelet (its log links, its device plugins' socket), containerd
# (its shims' sockets), the CNI plugins (their cached results) and skopeo (its blob cache) write
# to whatever they are told; `down` removes what they left there, and the folders `up` did not
# find.
HOST_FOLDERS=(/var/log/containers /var/lib/kubelet /run/containerd /var/lib/cni /var/lib/containers)

install() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Installing must not start the packages' services (docker-registry's would listen on the
  # machine's network): policy-rc.d refuses every start while it exists.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy=1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
}

in_netns() { nsenter --net="$dir/netns" -- "$@"; }

# Starts a long-running component inside the namespace, logging to DIR/NAME.log.
start() {
  local name=$1
  shift
  nsenter --net="$dir/netns" -- "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# Waits until a command succeeds; fails after $1 seconds, or at once if component $2 has died.
wait_for() {
  local seconds=$1 name=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    alive "$(cat "$dir/$name.pid")" || { log "$name exited"; return 1; }
    [ $SECONDS -lt $deadline ] || { log "$name was not ready within $seconds s"; return 1; }
    sleep 0.5
  done
  log "$name is ready"
}

# The images, built before anything runs: a pause image and the payload image, in the OCI
# layout DIR/images.
build_images() {
  local images=$dir/images
  mkdir -p "$images"
  gcc -static -Os -s -o "$images/pause" "$here/real-node/pause.c"
  umoci init --layout "$images/oci"

  local pause=$images/pause-rootfs
  mkdir -p "$pause"
  cp "$images/pause" "$pause/pause"
  umoci new --image "$images/oci:pause"
  umoci insert --image "$images/oci:pause" "$pause" /
  umoci config --image "$images/oci:pause" --config.entrypoint /pause --config.user 65535:65535

  local rootfs=$images/payload-rootfs
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
  cp /bin/busybox "$rootfs/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  # Debian's bash and the libraries it is linked against, at the paths it looks for them.
  rm -f "$rootfs/bin/bash"
  cp /bin/bash "$rootfs/bin/bash"
  local library
  for library in $(ldd /bin/bash | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
  done
  cp -r "$here/real-node/payload/." "$rootfs/"
  printf 'root:x:0:0:root:/root:/bin/sh\natlas:x:1000:1000:atlas:/home/atlas:/bin/bash\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\natlas:x:1000:\n' >"$rootfs/etc/group"
  chown -R 1000:1000 "$rootfs/home/atlas"
  chmod 1777 "$rootfs/tmp"
  umoci new --image "$images/oci:payload"
  umoci insert --image "$images/oci:payload" "$rootfs" /
  umoci config --image "$images/oci:payload" --config.user atlas --config.workingdir /caf/build \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.cmd /bin/bash
}

certificates() {
  local registry=$dir/registry
  mkdir -p "$registry"
  (
    cd "$registry"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=submission-helper-test-registry-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE_IP" -keyout registry.key -out registry.csr 2>/dev/null
    printf 'subjectAltName=IP:%s\n' "$NODE_IP" >san.ext
    openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out registry.crt 2>/dev/null
  )
}

start_registry() {
  local registry=$dir/registry
  certificates
  openssl rand -hex 16 >"$registry/password"
  htpasswd -Bbn "$REGISTRY_USER" "$(cat "$registry/password")" >"$registry/htpasswd"
  cat >"$registry/config.yml" <<CONFIG
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $registry/data
http:
  addr: $REGISTRY
  tls:
    certificate: $registry/registry.crt
    key: $registry/registry.key
auth:
  htpasswd:
    realm: submission-helper-tests
    path: $registry/htpasswd
CONFIG
  start registry docker-registry serve "$registry/config.yml"
  # Up when it refuses a request without the password.
  wait_for 30 registry in_netns sh -c \
    "curl -sS -o /dev/null -w '%{http_code}' --cacert '$registry/ca.crt' https://$REGISTRY/v2/ | grep -qx 401"
  mkdir -p "$registry/certs"
  cp "$registry/ca.crt" "$registry/certs/ca.crt"
  local image
  for image in "$dir/images/oci:pause=$PAUSE_IMAGE" "$dir/images/oci:payload=$PAYLOAD_IMAGE" \
    "$snakemake_layout:snakemake=$SNAKEMAKE_IMAGE"; do
    in_netns skopeo --insecure-policy copy -q --dest-cert-dir "$registry/certs" \
      --dest-creds "$REGISTRY_USER:$(cat "$registry/password")" \
      "oci:${image%%=*}" "docker://${image#*=}"
  done
  log "pushed $PAYLOAD_IMAGE, $PAUSE_IMAGE and $SNAKEMAKE_IMAGE"
}

start_containerd() {
  local containerd=$dir/containerd
  mkdir -p "$containerd/certs.d/$REGISTRY" "$dir/cni/net.d"
  # containerd 1.6 needs a [host] entry, and asks the server too when the host lacks an image:
  # both trust the registry's CA.
  cat >"$containerd/certs.d/$REGISTRY/hosts.toml" <<HOSTS
server = "https://$REGISTRY"
ca = "$dir/registry/ca.crt"

[host."https://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  ca = "$dir/registry/ca.crt"
HOSTS
  cat >"$containerd/config.toml" <<CONFIG
version = 2
root = "$containerd/root"
state = "$containerd/state"

[grpc]
  address = "$containerd/containerd.sock"

[ttrpc]
  address = "$containerd/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$containerd/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$containerd/certs.d"
CONFIG
  cat >"$dir/cni/net.d/10-pods.conflist" <<CONFIG
{
  "cniVersion": "0.4.0",
  "name": "$(network_name)",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni/ipam"
      }
    }
  ]
}
CONFIG
  start containerd containerd --config "$containerd/config.toml"
  wait_for 60 containerd in_netns ctr --address "$containerd/containerd.sock" version
  # The sandbox image, present before any pod needs it (the registry asks for a password).
  in_netns skopeo --insecure-policy copy -q "oci:$dir/images/oci:pause" \
    "docker-archive:$dir/images/pause.tar:$PAUSE_IMAGE"
  in_netns ctr --address "$containerd/containerd.sock" -n k8s.io images import \
    "$dir/images/pause.tar" >/dev/null
}

# Names that tell this run's cgroups and CNI network from any other's.
run_id() { printf '%s' "$dir" | sha256sum | cut -c1-10; }
network_name() { printf 'submission-helper-%s' "$(run_id)"; }
cgroup_root() { printf '/submission-helper-node-%s' "$(run_id)"; }

# The kubelet's cgroup root, made in every cgroup v1 hierarchy (the kubelet checks it exists).
make_cgroup_root() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -f "$hierarchy/cgroup.procs" ] || continue
    mkdir -p "$hierarchy$(cgroup_root)"
    if [ -f "$hierarchy/cpuset.cpus" ]; then
      cat "$hierarchy/cpuset.cpus" >"$hierarchy$(cgroup_root)/cpuset.cpus"
      cat "$hierarchy/cpuset.mems" >"$hierarchy$(cgroup_root)/cpuset.mems"
    fi
  done
}

start_kubelet() {
  local kubelet=$dir/kubelet
  mkdir -p "$kubelet/root" "$kubelet/pod-logs"
  make_cgroup_root
  cat >"$kubelet/config.yaml" <<CONFIG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $(cgroup_root)
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: $kubelet/pod-logs
volumePluginDir: $kubelet/volume-plugins
failSwapOn: false
# The API server reaches the kubelet (logs, exec) only inside this namespace.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
# The machine's disks and memory are shared: no eviction for what others use.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
CONFIG
  local bin
  bin=$(dirname "$(command -v kube-apiserver)")
  start kubelet "$bin/kubelet" --config "$kubelet/config.yaml" \
    --kubeconfig "$dir/cluster/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --root-dir "$kubelet/root" --cert-dir "$kubelet/pki"
  wait_for 120 kubelet node_ready
}

node_ready() {
  [ "$(in_netns kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

start_scheduler() {
  local port bin
  bin=$(dirname "$(command -v kube-apiserver)")
  port=$(in_netns python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/cluster/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/cluster/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/cluster/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$port" --leader-elect=false
  wait_for 60 kube-scheduler in_netns curl -fsSk "https://127.0.0.1:$port/healthz"
}

up() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/netns" ] || die "$dir is in use: run '$0 down $dir' first"
  local package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || die "$package is not installed: run '$0 install' first"
  done
  [ -x "$("$here/control-plane.sh" bin)/kubelet" ] \
    || die "no kubelet built: run 'tests/control-plane.sh install' first"
  local started=$SECONDS setting folder
  trap 'up_failed' EXIT

  for setting in "${KERNEL_SETTINGS[@]}"; do
    printf '%s %s\n' "$setting" "$(cat "/proc/sys/$setting")"
  done >"$dir/kernel-settings"
  for folder in "${HOST_FOLDERS[@]}"; do
    [ -e "$folder" ] || echo "$folder"
  done >"$dir/host-folders"

  build_images
  # Built from Debian's packages and PyPI, so before anything runs in the namespace; cached.
  snakemake_layout=$("$here/tes/snakemake.sh" image)

  # The namespace, kept by a bind mount on DIR/netns, with its loopback and the node's link.
  touch "$dir/netns"
  unshare --net="$dir/netns" true
  in_netns ip link set lo up
  in_netns ip link add node0 type veth peer name node0-peer
  in_netns ip addr add "$NODE_IP/24" dev node0
  in_netns ip link set node0-peer up
  in_netns ip link set node0 up
  in_netns sysctl -q -w net.ipv4.ip_forward=1

  in_netns "$here/postgres.sh" up "$dir/postgres"
  in_netns "$here/control-plane.sh" up "$dir/cluster"
  # shellcheck disable=SC1091
  source "$dir/cluster/env"
  # The node the control plane has a kubelet's identity for (its token's user id).
  NODE_NAME=$(awk -F, '$4 == "system:nodes" { print $3 }' "$dir/cluster/tokens.csv")
  start_scheduler
  start_registry
  start_containerd
  start_kubelet

  {
    cat "$dir/cluster/env" "$dir/postgres/env"
    echo "export SH_TEST_KUBECONFIG=$KUBECONFIG"
    echo "export SH_TEST_REAL_NODE=$NODE_NAME"
    echo "export SH_TEST_REGISTRY=$REGISTRY"
    echo "export SH_TEST_REGISTRY_USERNAME=$REGISTRY_USER"
    echo "export SH_TEST_REGISTRY_PASSWORD=$(cat "$dir/registry/password")"
    echo "export SH_TEST_PAYLOAD_IMAGE=$PAYLOAD_IMAGE"
    echo "export SH_TEST_SNAKEMAKE_IMAGE=$SNAKEMAKE_IMAGE"
  } >"$dir/env"
  trap - EXIT
  log "up in $((SECONDS - started)) s: node $NODE_NAME ($NODE_IP), registry $REGISTRY; run tests with '$0 run $dir CMD'"
}

up_failed() {
  local status=$?
  local file
  for file in "$dir"/*.log "$dir"/cluster/*.log; do
    [ -f "$file" ] && { log "last lines of $file:"; tail -n 20 "$file" >&2; }
  done
  down
  exit "$status"
}

# Whether process $1 runs: not gone, nor a zombie (what `up` started is reaped by nobody once
# `up` has ended).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ "$state" != Z* ]]
}

stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# The processes whose network namespace is the node's (what `up` started, the containers' shims
# and whatever they started), by pid.
processes_in_netns() {
  local inode link pid
  inode=$(stat -L -c %i "$dir/netns" 2>/dev/null) || return 0
  for link in /proc/[0-9]*/ns/net; do
    pid=${link#/proc/}
    pid=${pid%%/*}
    [ "$pid" != $$ ] && [ "$(stat -L -c %i "$link" 2>/dev/null)" = "$inode" ] && echo "$pid"
  done
  return 0
}

# The processes in the kubelet's cgroups: the containers, each in a namespace of its own.
processes_in_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy$(cgroup_root)" ] && find "$hierarchy$(cgroup_root)" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  return 0
}

down() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  # The pods first, through the kubelet while it runs, so that each sandbox's network is torn
  # down by the CNI plugins: until no container runs.
  if [ -f "$dir/kubelet.pid" ] && alive "$(cat "$dir/kubelet.pid")"; then
    KUBECACHEDIR="$dir/cluster/kubectl-cache" in_netns "$(dirname "$(cat "$dir/cluster/kube-apiserver.bin")")/kubectl" --kubeconfig "$dir/cluster/kubeconfig" \
      delete pods --all-namespaces --all --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ] && [ -n "$(in_netns ctr --address "$dir/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null)" ]; do
      sleep 0.5
    done
  fi
  stop_pid "$dir/kubelet.pid"
  stop_pid "$dir/kube-scheduler.pid"
  local pid
  for pid in $(processes_in_cgroups); do kill -9 "$pid" 2>/dev/null || true; done
  stop_pid "$dir/containerd.pid"
  stop_pid "$dir/registry.pid"
  "$here/control-plane.sh" down "$dir/cluster" || true
  "$here/postgres.sh" down "$dir/postgres" >/dev/null 2>&1 || true
  # Whatever is left in the namespace: containerd's shims, which outlive containerd.
  for pid in $(processes_in_netns) $(processes_in_cgroups); do kill -9 "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ] && [ -n "$(processes_in_netns)$(processes_in_cgroups)" ]; do sleep 0.2; done

  # Mounts under DIR, deepest first: containers' root filesystems, pods' volumes and network
  # namespaces, and the node's own network namespace last.
  local mount
  awk -v dir="$dir/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done
  local hierarchy cgroup
  for hierarchy in /sys/fs/cgroup/*/; do
    [ -d "$hierarchy$(cgroup_root)" ] || continue
    find "$hierarchy$(cgroup_root)" -depth -type d | while read -r cgroup; do rmdir "$cgroup" 2>/dev/null || true; done
  done
  # What the kubelet and the CNI plugins left outside DIR: log links into DIR, cached results
  # of this run's network, and the folders `up` did not find.
  find /var/log/containers -maxdepth 1 -lname "$dir/*" -delete 2>/dev/null || true
  local sandbox
  for sandbox in "$dir"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    [ -d "$sandbox" ] && rm -f /var/lib/cni/results/*-"${sandbox##*/}"-*
  done
  rm -f /var/lib/cni/results/"$(network_name)"-*
  if [ -f "$dir/host-folders" ]; then
    local folder
    while read -r folder; do
      case $folder in
        /var/lib/kubelet) rm -f "$folder/device-plugins/kubelet.sock" ;;
        /var/lib/containers) rm -f "$folder/cache/blob-info-cache-v1.boltdb" ;;
      esac
      find "$folder" -depth -type d -empty -delete 2>/dev/null || true
    done <"$dir/host-folders"
  fi
  if [ -f "$dir/kernel-settings" ]; then
    local setting value
    while read -r setting value; do
      [ "$(cat "/proc/sys/$setting")" = "$value" ] || echo "$value" >"/proc/sys/$setting"
    done <"$dir/kernel-settings"
  fi
  rm -f "$dir/netns"
  log "down: $dir"
}

dir=""
case "${1:-}" in
  install) install ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; dir=$2; up ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; dir=$2; down ;;
  run)
    [ $# -ge 3 ] || die "usage: $0 run DIR CMD..."
    dir=$(cd "$2" && pwd)
    shift 2
    # In place of this script (the same process), so a caller can stop CMD by the pid it started.
    # shellcheck disable=SC2016
    exec nsenter --net="$dir/netns" -- bash -c 'source "$1/env" && shift && exec "$@"' run "$dir" "$@"
    ;;
  *) die "usage: $0 install | up DIR | run DIR CMD... | down DIR" ;;
esac
