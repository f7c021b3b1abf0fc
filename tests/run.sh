#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests talk to
# (a Postgres server, a local Kubernetes control plane with a simulated node, all on 127.0.0.1;
# a real node, with its own control plane, registry and Postgres, in a network namespace of its
# own), checks formatting and lints, runs every test, and stops everything it started. Prints
# the time each step took at the end.
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
# after every suite ran against the current one (tests/control-plane.sh's default).
oldest_kubernetes="1.30.14"

work=$(mktemp -d "${TMPDIR:-/tmp}/submission-helper-tests.XXXXXX")
node_pids=()
cleanup() {
  status=$?
  if [ -n "${fuzz_pid:-}" ]; then
    kill "$fuzz_pid" 2>/dev/null || true
  fi
  if [ -n "${tes_pid:-}" ]; then
    kill "$tes_pid" 2>/dev/null || true
  fi
  for pid in "${node_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$root/tests/control-plane.sh" down "$work/cluster" >/dev/null 2>&1 || true
  SH_KUBERNETES_VERSION="$oldest_kubernetes" "$root/tests/control-plane.sh" down "$work/oldest" >/dev/null 2>&1 || true
  "$root/tests/postgres.sh" down "$work/postgres" >/dev/null 2>&1 || true
  "$root/tests/real-node.sh" down "$work/real-node" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    for log in "$work"/cluster/*.log "$work"/oldest/*.log "$work"/node-sim*.log "$work"/real-node/*.log; do
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

# Starts a simulated node for the control plane of the kubeconfig $1, logging to node-sim-$2.
start_node_sim() {
  local kubeconfig=$1 name=$2
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

step "Postgres"
tests/postgres.sh up "$work/postgres"
# shellcheck disable=SC1091
source "$work/postgres/env"

step "Kubernetes control plane (and the real node's kubelet and kube-scheduler)"
tests/control-plane.sh install
tests/control-plane.sh up "$work/cluster"
# shellcheck disable=SC1091
source "$work/cluster/env"
export SH_TEST_KUBECONFIG="$KUBECONFIG"
kubectl version

step "Build"
cargo build --workspace --all-targets
# For tests that run a simulated node of their own (in a `lone-` namespace).
export SH_TEST_NODE_SIM="$CARGO_TARGET_DIR/debug/node-sim"

step "Simulated node"
start_node_sim "$KUBECONFIG" current

step "Format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "Schemathesis against the served OpenAPI document"
# Generated requests from the OpenAPI document, against a service with no cluster (so no
# payload runs on this machine); any 5xx fails the run. Bounded in examples and time. The
# event stream is left out: an answer that never ends would hold each example until the timeout
# (its parameters are checked by tests/api/events.rs).
venv="$cache/schemathesis-4.32.5"
if [ ! -x "$venv/bin/schemathesis" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis==4.32.5
fi
fuzz_db="sqlite://$work/schemathesis.db"
fuzz_token=$("$CARGO_TARGET_DIR/debug/submission-helper" token create --user schemathesis --database-url "$fuzz_db" 2>/dev/null)
fuzz_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
KUBECONFIG=/nonexistent SUBMISSION_HELPER_LISTEN="127.0.0.1:$fuzz_port" SUBMISSION_HELPER_DATABASE_URL="$fuzz_db" \
  "$CARGO_TARGET_DIR/debug/submission-helper" serve >"$work/schemathesis-service.log" 2>&1 &
fuzz_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$fuzz_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
set +e
timeout 600 "$venv/bin/schemathesis" run "http://127.0.0.1:$fuzz_port/openapi.json" \
  --checks not_a_server_error -H "Authorization: Bearer $fuzz_token" \
  --exclude-path-regex '^/v1/(jobs|pods|events)$|/pods$|/cluster-events$|/logs$|^/readyz$' \
  --max-examples 25 --workers 2 --seed 1
fuzz_status=$?
set -e
kill "$fuzz_pid" 2>/dev/null || true
[ "$fuzz_status" -eq 0 ] || { echo "schemathesis found server errors (service log: $work/schemathesis-service.log)"; tail -n 30 "$work/schemathesis-service.log"; exit 1; }

step "Tests"
export CI="${CI:-}"
export SH_TEST_REQUIRE_ALL=1
# The real node's tests run apart, inside its namespace.
set +e
cargo test --workspace -- --include-ignored --skip real_node:: "${filter[@]}" 2>&1 | tee "$work/tests.log"
status=${PIPESTATUS[0]}
set -e

# The TES suite (tests/tes): py-tes tests and the GA4GH conformance runner, against the service
# as a process on the simulated node. Tests that need a real kubelet (executors running in their
# images, files through mounted volumes) are marked real_node and left out here.
if [ ${#filter[@]} -eq 0 ]; then
  step "TES suite: py-tes and the conformance runner on the simulated node (tests/tes/run.sh)"
  tes_db="sqlite://$work/tes.db"
  tes_bin="$CARGO_TARGET_DIR/debug/submission-helper"
  export SH_TES_TOKEN SH_TES_OTHER_TOKEN
  SH_TES_TOKEN=$("$tes_bin" token create --user tes-alice --database-url "$tes_db" 2>/dev/null)
  SH_TES_OTHER_TOKEN=$("$tes_bin" token create --user tes-bob --database-url "$tes_db" 2>/dev/null)
  kubectl create namespace sh-tes >/dev/null
  tes_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  SUBMISSION_HELPER_LISTEN="127.0.0.1:$tes_port" SUBMISSION_HELPER_DATABASE_URL="$tes_db" \
    SUBMISSION_HELPER_NAMESPACE=sh-tes "$tes_bin" serve >"$work/tes-service.log" 2>&1 &
  tes_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$tes_port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  set +e
  tests/tes/run.sh pytest "http://127.0.0.1:$tes_port" -m "not real_node and not not_yet" 2>&1 | tee "$work/tes-pytest.log"
  tes_status=${PIPESTATUS[0]}
  tests/tes/run.sh conformance "http://127.0.0.1:$tes_port" 2>&1 | tee "$work/tes-conformance.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || tes_status=1
  set -e
  kill "$tes_pid" 2>/dev/null || true
  if [ "$tes_status" -eq 0 ]; then
    echo "test result: ok. 2 passed; 0 failed (TES suite: py-tes and the conformance runner)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (TES suite; service log: $work/tes-service.log)" >>"$work/tests.log"
    status=1
  fi
fi

# With a filter, the real node is started only for a filter that names its tests.
real_node_filter=(real_node::)
if [ ${#filter[@]} -gt 0 ]; then
  real_node_filter=()
  for word in "${filter[@]}"; do
    if [[ "$word" == *real_node* ]]; then real_node_filter=("${filter[@]}"); fi
  done
fi
if [ ${#real_node_filter[@]} -gt 0 ]; then
  step "End-to-end on a real node: kubelet, containerd, a private registry (tests/real-node.sh)"
  tests/real-node.sh install
  if tests/real-node.sh up "$work/real-node"; then
    set +e
    CARGO_NET_OFFLINE=true tests/real-node.sh run "$work/real-node" \
      cargo test --test e2e -- --include-ignored "${real_node_filter[@]}" 2>&1 | tee "$work/real-node.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    set -e
    cat "$work/real-node.log" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (the real node did not start)" >>"$work/tests.log"
    status=1
  fi
  tests/real-node.sh down "$work/real-node"
fi

if [ ${#filter[@]} -eq 0 ]; then
  step "Benchmark, smoke run (tests/bench.sh runs it in full; BENCHMARKS.md)"
  # Every section at a tiny size, against this run's Postgres and control plane: proves the
  # benchmark still runs and the service answers it correctly; its figures mean nothing here.
  if cargo test --bench service; then
    echo "test result: ok. 1 passed; 0 failed (benchmark smoke run)" >>"$work/tests.log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (benchmark smoke run)" >>"$work/tests.log"
    status=1
  fi

  step "End-to-end suite on the oldest supported Kubernetes, $oldest_kubernetes"
  SH_KUBERNETES_VERSION="$oldest_kubernetes" tests/control-plane.sh install --no-node
  current_kubernetes=$(tests/control-plane.sh version)
  tests/control-plane.sh prune "${current_kubernetes#v}" "$oldest_kubernetes"
  SH_KUBERNETES_VERSION="$oldest_kubernetes" tests/control-plane.sh up "$work/oldest"
  (
    # shellcheck disable=SC1091
    source "$work/oldest/env"
    export SH_TEST_KUBECONFIG="$KUBECONFIG"
    kubectl version
    start_node_sim "$KUBECONFIG" oldest
    # This subshell's node: stopped when it ends, since the outer cleanup does not know it.
    trap 'kill "${node_pids[-1]}" 2>/dev/null || true' EXIT
    set +e
    cargo test --test e2e -- --include-ignored --skip real_node:: 2>&1 | tee "$work/oldest.log"
    exit "${PIPESTATUS[0]}"
  ) || status=1
  cat "$work/oldest.log" >>"$work/tests.log"
fi
end_step
printf '\ntime per step:\n'
printf '%s\n' "${timings[@]}"
[ -d "$SH_TEST_ARTIFACTS" ] && echo "screenshots of the page: $SH_TEST_ARTIFACTS"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i - 1); if ($(i) ~ /^failed;?$/) f += $(i - 1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$work/tests.log"
exit "$status"
