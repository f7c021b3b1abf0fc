#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and builds what the tests need, checks
# formatting and lints, starts a real node in a network namespace of its own (tests/real-node.sh:
# a kubelet, containerd and a private registry, with its control plane and a Postgres server) and,
# in the same namespace, a second control plane whose pods a simulated node runs (tests/node-sim),
# runs every test inside that namespace, then the end-to-end suite on the oldest supported
# Kubernetes, and stops and removes everything it started. Prints the time each step took.
#
#   tests/run.sh              everything
#   tests/run.sh -- FILTER    only tests whose name contains FILTER (passed to cargo test)
#
# Slow builds are cached under ~/.cache/submission-helper/ (the control plane's binaries and
# cargo's target directory); a missing or stale cache only makes the run slower.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
cache="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

filter=()
if [ "${1:-}" = "--" ]; then
  shift
  filter=("$@")
fi

# The oldest Kubernetes release the service supports: the end-to-end suite runs against it too,
# on the simulated node, after every suite ran against the current one (tests/control-plane.sh's
# default).
oldest_kubernetes="1.30.14"

work=$(mktemp -d "${TMPDIR:-/tmp}/submission-helper-tests.XXXXXX")
# The real node's Postgres runs as its own user, which must reach its folder in here.
chmod a+x "$work"
node_pids=()
stop_simulated_nodes() {
  local pid
  for pid in "${node_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  node_pids=()
}
cleanup() {
  status=$?
  if [ -n "${fuzz_pid:-}" ]; then
    kill "$fuzz_pid" 2>/dev/null || true
  fi
  if [ -n "${tes_pid:-}" ]; then
    kill "$tes_pid" 2>/dev/null || true
  fi
  stop_simulated_nodes
  "$root/tests/control-plane.sh" down "$work/simulated" >/dev/null 2>&1 || true
  "$root/tests/control-plane.sh" down "$work/second" >/dev/null 2>&1 || true
  SH_KUBERNETES_VERSION="$oldest_kubernetes" "$root/tests/control-plane.sh" down "$work/oldest" >/dev/null 2>&1 || true
  "$root/tests/real-node.sh" down "$work/real-node" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    for log in "$work"/real-node/*.log "$work"/real-node/cluster/*.log "$work"/simulated/*.log \
      "$work"/oldest/*.log "$work"/node-sim*.log; do
      [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 40 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# Each step's name and how long it took, printed at the end.
timings=()
step_name=""
step_started=$SECONDS
end_step() {
  [ -n "$step_name" ] && timings+=("$(printf '%6d s  %s' $((SECONDS - step_started)) "$step_name")")
  step_name=""
}
step() {
  end_step
  step_name=$*
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}

# Runs a command inside the real node's network namespace, where every test runs: with the
# environment of the real node's control plane and Postgres (tests/real-node.sh's env file).
inside() {
  "$root/tests/real-node.sh" run "$work/real-node" "$@"
}

# Runs a command inside the namespace with the environment of the control plane in folder $1
# instead: its pods run on the simulated node, and there is no real node.
on_simulated() {
  local dir=$1
  shift
  # shellcheck disable=SC2016
  inside bash -c 'source "$1/env" && export SH_TEST_KUBECONFIG=$KUBECONFIG &&
    unset SH_TEST_REAL_NODE SH_TEST_SIMULATED_KUBECONFIG && shift && exec "$@"' on-simulated "$dir" "$@"
}

# Starts a simulated node, inside the namespace, for the control plane of the kubeconfig $1,
# logging to node-sim-$2.
start_node_sim() {
  local kubeconfig=$1 name=$2
  "$root/tests/real-node.sh" run "$work/real-node" \
    "$CARGO_TARGET_DIR/debug/node-sim" --kubeconfig "$kubeconfig" --work-dir "$work/node-$name" \
    --exclude-namespace-prefix lone- \
    >"$work/node-sim-$name.out" 2>"$work/node-sim-$name.log" &
  local pid=$!
  node_pids+=("$pid")
  for _ in $(seq 1 300); do
    grep -q "node-sim ready" "$work/node-sim-$name.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "node-sim exited"; exit 1; }
    sleep 0.2
  done
  grep -q "node-sim ready" "$work/node-sim-$name.out" || { echo "node-sim did not become ready"; exit 1; }
  cat "$work/node-sim-$name.out"
}

# The page's browser tests drive Debian's Chromium through chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  step "Chromium and chromedriver (Debian's packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
fi
# Screenshots the browser tests take, to be looked at after the run.
export SH_TEST_ARTIFACTS="$root/test-artifacts"
rm -rf "$SH_TEST_ARTIFACTS"

step "The real node's Debian packages (containerd, runc, CNI plugins, docker-registry, umoci, skopeo)"
tests/real-node.sh install

step "Kubernetes $(tests/control-plane.sh version): control plane, kubelet and kube-scheduler; Kueue"
tests/control-plane.sh install --kueue

step "Build"
cargo build --workspace --all-targets
# For tests that run a simulated node of their own (in a `lone-` namespace).
export SH_TEST_NODE_SIM="$CARGO_TARGET_DIR/debug/node-sim"

step "Format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "Dependencies: licences, bans, sources, advisories (tests/deny.sh, deny.toml)"
tests/deny.sh

# Schemathesis is installed before anything runs in the namespace, which reaches no registry.
venv="$cache/schemathesis-4.32.5"
if [ ! -x "$venv/bin/schemathesis" ]; then
  step "Schemathesis (PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis==4.32.5
fi
# The official Prometheus client, whose parsers read /metrics in tests/api/metrics.rs.
prometheus_venv="$cache/prometheus-client-0.26.0"
if ! "$prometheus_venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  step "The official Prometheus client (PyPI)"
  rm -rf "$prometheus_venv"
  python3 -m venv "$prometheus_venv"
  "$prometheus_venv/bin/pip" install -q prometheus-client==0.26.0
fi
export SH_TEST_PROMETHEUS_PYTHON="$prometheus_venv/bin/python"
# axe-core, the accessibility checker the browser tests run inside each view of the page.
axe="$cache/axe-core-4.14.1/axe.min.js"
if [ ! -s "$axe" ]; then
  step "axe-core (npm registry, pinned by its integrity hash)"
  tests/axe.sh "$axe"
fi
export SH_TEST_AXE="$axe"
for old in "$cache"/axe-core-*; do [ "$old" = "$(dirname "$axe")" ] || rm -rf "$old"; done

# The TES suite's venvs: py-tes and the GA4GH conformance runner (tests/tes/run.sh).
step "TES suite's Python packages (PyPI, pinned; cached); Snakemake and its executors' image"
tests/tes/run.sh install
tests/tes/snakemake.sh install

# Everything from here on runs in the namespace, which reaches no registry either.
export CARGO_NET_OFFLINE=true

step "Real node, its control plane and Postgres, in a network namespace (tests/real-node.sh)"
tests/real-node.sh up "$work/real-node"
inside kubectl version

step "Simulated node and its own control plane, in the same namespace"
inside tests/control-plane.sh up "$work/simulated"
export SH_TEST_SIMULATED_KUBECONFIG="$work/simulated/kubeconfig"
start_node_sim "$SH_TEST_SIMULATED_KUBECONFIG" current

step "Schemathesis against the served OpenAPI document"
# Generated requests from the OpenAPI document, against a service with no cluster (so no
# payload runs); any 5xx fails the run. Bounded in examples and time. The event stream is left
# out: an answer that never ends would hold each example until the timeout (its parameters are
# checked by tests/api/events.rs). One worker: CPython 3.11's `ast` is not safe across threads,
# and hypothesis parses sources with it (two workers once failed a run on "AST constructor
# recursion depth mismatch", with no request at fault).
fuzz_db="sqlite://$work/schemathesis.db"
fuzz_token=$("$CARGO_TARGET_DIR/debug/submission-helper" token create --user schemathesis --database-url "$fuzz_db" 2>/dev/null)
fuzz_port=$(inside python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$root/tests/real-node.sh" run "$work/real-node" env KUBECONFIG=/nonexistent \
  SUBMISSION_HELPER_LISTEN="127.0.0.1:$fuzz_port" SUBMISSION_HELPER_DATABASE_URL="$fuzz_db" \
  "$CARGO_TARGET_DIR/debug/submission-helper" serve >"$work/schemathesis-service.log" 2>&1 &
fuzz_pid=$!
for _ in $(seq 1 100); do
  inside curl -fsS "http://127.0.0.1:$fuzz_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
set +e
inside timeout 600 "$venv/bin/schemathesis" run "http://127.0.0.1:$fuzz_port/openapi.json" \
  --checks not_a_server_error -H "Authorization: Bearer $fuzz_token" \
  --exclude-path-regex '^/v1/(jobs|pods|events)$|/pods$|/cluster-events$|/logs$|^/readyz$' \
  --max-examples 25 --workers 1 --seed 1
fuzz_status=$?
set -e
kill "$fuzz_pid" 2>/dev/null || true
[ "$fuzz_status" -eq 0 ] || { echo "schemathesis found server errors (service log: $work/schemathesis-service.log)"; tail -n 30 "$work/schemathesis-service.log"; exit 1; }

step "Tests (the cluster's on the real node, node loss, hung log reads and bursts of hundreds of pods on the simulated node)"
export CI="${CI:-}"
export SH_TEST_REQUIRE_ALL=1
set +e
inside cargo test --workspace --no-fail-fast -- --include-ignored --skip through_kueue:: "${filter[@]}" 2>&1 | tee "$work/tests.log"
status=${PIPESTATUS[0]}
set -e

if [ ${#filter[@]} -eq 0 ]; then
  step "TES suite: py-tes and the conformance runner, on the simulated node (tests/tes/run.sh)"
  # The service as a process, against the simulated node's control plane. Tests that need a
  # real kubelet (executors running in their images, files through mounted volumes, each
  # executor's output) are marked real_node: the end-to-end test real_node::tes runs those.
  tes_db="sqlite://$work/tes.db"
  tes_bin="$CARGO_TARGET_DIR/debug/submission-helper"
  export SH_TES_TOKEN SH_TES_OTHER_TOKEN
  SH_TES_TOKEN=$("$tes_bin" token create --user tes-alice --database-url "$tes_db" 2>/dev/null)
  SH_TES_OTHER_TOKEN=$("$tes_bin" token create --user tes-bob --database-url "$tes_db" 2>/dev/null)
  on_simulated "$work/simulated" kubectl create namespace sh-tes >/dev/null
  tes_port=$(inside python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  on_simulated "$work/simulated" env SUBMISSION_HELPER_LISTEN="127.0.0.1:$tes_port" \
    SUBMISSION_HELPER_DATABASE_URL="$tes_db" SUBMISSION_HELPER_NAMESPACE=sh-tes \
    "$tes_bin" serve >"$work/tes-service.log" 2>&1 &
  tes_pid=$!
  for _ in $(seq 1 100); do
    inside curl -fsS "http://127.0.0.1:$tes_port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  set +e
  inside tests/tes/run.sh pytest "http://127.0.0.1:$tes_port" -m "not real_node" 2>&1 | tee "$work/tes-pytest.log"
  tes_status=${PIPESTATUS[0]}
  inside tests/tes/run.sh conformance "http://127.0.0.1:$tes_port" 2>&1 | tee "$work/tes-conformance.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || tes_status=1
  set -e
  kill "$tes_pid" 2>/dev/null || true
  tes_pid=""
  if [ "$tes_status" -eq 0 ]; then
    echo "test result: ok. 2 passed; 0 failed (TES suite: py-tes and the conformance runner)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (TES suite; service log: $work/tes-service.log)" >>"$work/tests.log"
    status=1
  fi

  step "Benchmark, smoke run, on the simulated node (tests/bench.sh runs it in full; BENCHMARKS.md)"
  # Every section at a tiny size, against this run's Postgres and the simulated node's control
  # plane: proves the benchmark still runs and the service answers it correctly; its figures
  # mean nothing here.
  if on_simulated "$work/simulated" cargo test --bench service; then
    echo "test result: ok. 1 passed; 0 failed (benchmark smoke run)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run)" >>"$work/tests.log"
    status=1
  fi

  # Over two clusters: a second control plane without a node beside the simulated one (the
  # section's namespaces are `lone-`: no payload runs, Jobs and pods are only created).
  inside tests/control-plane.sh up "$work/second" >/dev/null
  if on_simulated "$work/simulated" env SH_TEST_SIMULATED_KUBECONFIG="$work/second/kubeconfig" \
    cargo test --bench service -- --only clusters; then
    echo "test result: ok. 1 passed; 0 failed (benchmark smoke run over two clusters)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run over two clusters)" >>"$work/tests.log"
    status=1
  fi
  inside tests/control-plane.sh down "$work/second" >/dev/null

  # Kueue's Job webhook holds every Job of the control plane it runs beside: it starts once
  # nothing else uses the simulated node's, and `kueue-down` removes the webhook.
  step "Submitting through Kueue $(tests/control-plane.sh kueue-version), on the simulated node"
  inside tests/control-plane.sh kueue-up "$work/simulated"
  set +e
  inside bash -c 'source "$1/kueue/env" && shift && exec "$@"' with-kueue "$work/simulated" \
    cargo test --test e2e -- --include-ignored through_kueue:: 2>&1 | tee "$work/kueue.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  cat "$work/kueue.log" >>"$work/tests.log"
  if on_simulated "$work/simulated" bash -c 'source "$SH_TEST_CONTROL_PLANE_DIR/kueue/env" &&
    exec cargo test --bench service -- --only kueue'; then
    echo "test result: ok. 1 passed; 0 failed (benchmark smoke run through Kueue)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run through Kueue)" >>"$work/tests.log"
    status=1
  fi
  inside tests/control-plane.sh kueue-down "$work/simulated"
  stop_simulated_nodes
  tests/control-plane.sh down "$work/simulated"

  step "Kubernetes $oldest_kubernetes: control plane"
  SH_KUBERNETES_VERSION="$oldest_kubernetes" tests/control-plane.sh install --no-node
  current_kubernetes=$(tests/control-plane.sh version)
  tests/control-plane.sh prune "${current_kubernetes#v}" "$oldest_kubernetes"

  step "End-to-end suite on the oldest supported Kubernetes, $oldest_kubernetes, on the simulated node"
  SH_KUBERNETES_VERSION="$oldest_kubernetes" inside tests/control-plane.sh up "$work/oldest"
  on_simulated "$work/oldest" kubectl version
  start_node_sim "$work/oldest/kubeconfig" oldest
  set +e
  # Its screenshots apart, so they do not replace the real node's. The tests over two clusters
  # need two control planes: they ran in the Tests step.
  on_simulated "$work/oldest" env SH_TEST_ARTIFACTS="$SH_TEST_ARTIFACTS/kubernetes-$oldest_kubernetes" \
    cargo test --test e2e -- --include-ignored --skip real_node:: --skip through_kueue:: \
    --skip several_clusters:: 2>&1 | tee "$work/oldest.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  cat "$work/oldest.log" >>"$work/tests.log"
  stop_simulated_nodes
fi

step "Removing the real node and everything in its namespace"
SH_KUBERNETES_VERSION="$oldest_kubernetes" tests/control-plane.sh down "$work/oldest"
tests/real-node.sh down "$work/real-node"
end_step
printf '\ntime per step:\n'
printf '%s\n' "${timings[@]}"
[ -d "$SH_TEST_ARTIFACTS" ] && echo "screenshots of the page: $SH_TEST_ARTIFACTS"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i - 1); if ($(i) ~ /^failed;?$/) f += $(i - 1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$work/tests.log"
exit "$status"
