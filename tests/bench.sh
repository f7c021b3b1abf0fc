#!/usr/bin/env bash
# Runs the benchmark (BENCHMARKS.md) at full size: starts Postgres and a local Kubernetes
# control plane on 127.0.0.1 as tests/run.sh does, runs `cargo bench --bench service`, and stops
# what it started. Arguments go to the benchmark:
#
#   tests/bench.sh                                   every section
#   tests/bench.sh --only accept,e2e,queries         some sections
#   tests/bench.sh --only e2e --jobs 500 --runs 1    end to end: its sizes, and runs of each
#   tests/bench.sh --only e2e --database postgres    one database only
#   tests/bench.sh --rows 200000                     fewer stored submissions for the queries
#   tests/bench.sh --only live --live 2000           fewer live Jobs for the controller figures
#   tests/bench.sh --only backlog                    a start with 100,000 queued submissions
#   tests/bench.sh --only kueue                      submissions through Kueue (started for it)
#   tests/bench.sh --only clusters                   1,000 submissions over two control planes
#   tests/bench.sh --profile DIR --only accept       also a perf profile and a flamegraph of
#                                                    every service process, into DIR
#
# It prints Markdown tables; it never fails for being slow, only when the service answers wrongly.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
cache="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

work=$(mktemp -d "${TMPDIR:-/tmp}/submission-helper-bench.XXXXXX")
cleanup() {
  status=$?
  "$root/tests/control-plane.sh" down "$work/cluster" >/dev/null 2>&1 || true
  "$root/tests/control-plane.sh" down "$work/second" >/dev/null 2>&1 || true
  "$root/tests/postgres.sh" down "$work/postgres" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

if [ "${1:-}" = "--profile" ]; then
  export SH_BENCH_PROFILE=$(realpath -m "$2")
  shift 2
  command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >&2
  inferno="$cache/inferno-0.12"
  [ -x "$inferno/bin/inferno-flamegraph" ] || cargo install -q --root "$inferno" "inferno@^0.12" >&2
  export PATH="$inferno/bin:$PATH"
  # Stacks need frame pointers; a build of its own keeps the usual one as it is.
  export RUSTFLAGS="-C force-frame-pointers=yes"
  export CARGO_TARGET_DIR="$cache/target-profile"
fi

tests/postgres.sh up "$work/postgres" >&2
# shellcheck disable=SC1091
source "$work/postgres/env"
tests/control-plane.sh install >&2
tests/control-plane.sh up "$work/cluster" >&2
# shellcheck disable=SC1091
source "$work/cluster/env"
export SH_TEST_KUBECONFIG="$KUBECONFIG"
# The section over two clusters has a second control plane beside the first.
if [ $# -eq 0 ] || [[ " $* " == *clusters* ]]; then
  tests/control-plane.sh up "$work/second" >&2
  export SH_TEST_SIMULATED_KUBECONFIG="$work/second/kubeconfig"
fi
# The live section runs its payloads on simulated nodes of its own.
cargo build --release -p node-sim >&2
export SH_TEST_NODE_SIM="$CARGO_TARGET_DIR/release/node-sim"

cargo bench --bench service -- "$@"

# Kueue last: its Job webhook would slow every other section's creates.
if [ $# -eq 0 ] || [[ " $* " == *kueue* ]]; then
  tests/control-plane.sh install --kueue >&2
  tests/control-plane.sh kueue-up "$work/cluster" >&2
  # shellcheck disable=SC1091
  source "$work/cluster/kueue/env"
  cargo bench --bench service -- --only kueue
fi
