#!/usr/bin/env bash
# The TES suite's Python side: py-tes tests and the GA4GH conformance runner, against a running
# service (base URL such as http://127.0.0.1:8080; both talk to it under /ga4gh/tes/v1).
#
#   tests/tes/run.sh install               the two venvs, under ~/.cache/submission-helper/
#   tests/tes/run.sh pytest URL [ARGS]     the py-tes tests (SH_TES_TOKEN, SH_TES_OTHER_TOKEN:
#                                          tokens of two users; SH_TES_IMAGE: the executors' image)
#   tests/tes/run.sh conformance URL       the runner's 1.1.0 tests but those tagged
#                                          schema_validation_only (SH_TES_TOKEN: the token the
#                                          proxy adds, since the runner sends none)
#
# Every package is pinned: ours in tests/tes/requirements.txt, the runner's in its own
# requirements.txt. The runner is not on PyPI: its snapshot (with its licence) is in the shared
# folder beside the repository (SH_SHARED_DIR to name another), copied to a temporary folder and
# installed from there, since it runs from its own folder and writes its report into it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
python="${PYTHON:-python3}"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# The shared folder: beside the repository, or beside the main checkout of a worktree.
shared_dir() {
  if [ -n "${SH_SHARED_DIR:-}" ]; then
    echo "$SH_SHARED_DIR"
    return
  fi
  local common
  common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for candidate in "$root/../shared" "${common:+$(dirname "$common")/../shared}"; do
    if [ -n "$candidate" ] && [ -d "$candidate/openapi-test-runner" ]; then
      (cd "$candidate" && pwd)
      return
    fi
  done
  echo "the shared folder with openapi-test-runner was not found beside $root (set SH_SHARED_DIR)" >&2
  exit 1
}

# A short hash of the files' contents (not their paths: the runner is hashed in a fresh copy).
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# Our venv: py-tes, pytest and what checks answers against the TES document.
tes_venv() {
  local venv
  venv="$cache/tes-python-$(hash_of "$here/requirements.txt")"
  if [ ! -x "$venv/bin/pytest" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --no-deps -r "$here/requirements.txt" >&2
    "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; exit 1; }
  fi
  echo "$venv"
}

# The runner's venv, apart from ours: it pins older pytest, requests and jsonschema.
runner_venv() {
  local runner="$1"
  local venv
  venv="$cache/openapi-test-runner-$(hash_of "$runner/requirements.txt" "$runner/SNAPSHOT")"
  if [ ! -x "$venv/bin/openapi-test-runner" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q -r "$runner/requirements.txt" >&2
    "$venv/bin/pip" install -q --no-deps "$runner" >&2
  fi
  echo "$venv"
}

# A copy of the runner to install and run from. The snapshot lacks the runner's schemas for its
# own YAML test files (docs/test_config/); they check only those files, not the server's
# answers, so where they are missing the copy gets schemas that accept any test file.
runner_copy() {
  local copy
  copy=$(mktemp -d "${TMPDIR:-/tmp}/openapi-test-runner.XXXXXX")
  cp -r "$(shared_dir)/openapi-test-runner/." "$copy/"
  chmod -R u+w "$copy"
  rm -rf "$copy/build" "$copy"/*.egg-info
  mkdir -p "$copy/docs/test_config"
  for schema in test_schema.json template_schema.json; do
    [ -f "$copy/docs/test_config/$schema" ] || echo '{}' >"$copy/docs/test_config/$schema"
  done
  echo "$copy"
}

need_url() {
  [ -n "${1:-}" ] || usage
  case "$1" in
    http://127.*|http://localhost*|http://\[::1\]*) ;;
    *) echo "the service must listen on loopback (http://127.0.0.1:PORT), not $1" >&2; exit 2 ;;
  esac
}

command="${1:-}"
shift || true
case "$command" in
  install)
    tes_venv >/dev/null
    copy=$(runner_copy)
    trap 'rm -rf "$copy"' EXIT
    runner_venv "$copy" >/dev/null
    echo "installed: $(tes_venv) and $(runner_venv "$copy")"
    ;;

  pytest)
    url="${1:-}"
    need_url "$url"
    shift
    : "${SH_TES_TOKEN:?SH_TES_TOKEN: a token of the first test user}"
    : "${SH_TES_OTHER_TOKEN:?SH_TES_OTHER_TOKEN: a token of a second user}"
    venv=$(tes_venv)
    cd "$here"
    SH_TES_URL="$url" SH_SHARED_DIR="$(shared_dir)" exec "$venv/bin/pytest" -p no:cacheprovider "$@"
    ;;

  conformance)
    url="${1:-}"
    need_url "$url"
    : "${SH_TES_TOKEN:?SH_TES_TOKEN: the token the proxy adds to every request of the runner}"
    copy=$(runner_copy)
    venv=$(runner_venv "$copy")
    tes=$(tes_venv)
    proxy_pid=""
    cleanup() {
      if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
      rm -rf "$copy"
    }
    trap cleanup EXIT

    "$tes/bin/python" "$here/tes_proxy.py" --upstream "$url" --port-file "$copy/proxy-port" \
      2>"$copy/proxy.log" &
    proxy_pid=$!
    for _ in $(seq 1 100); do
      [ -s "$copy/proxy-port" ] && break
      sleep 0.1
    done
    [ -s "$copy/proxy-port" ] || { echo "the proxy did not start:"; cat "$copy/proxy.log"; exit 1; }
    proxy="http://127.0.0.1:$(cat "$copy/proxy-port")"

    # Tests tagged schema_validation_only are left out: several create tasks with s3:// inputs
    # and outputs and expect 200, which this service refuses (400) by design (README, TES).
    mkdir -p "$copy/report"
    (cd "$copy" && "$venv/bin/openapi-test-runner" report --server "$proxy/ga4gh/tes/" \
      --version 1.1.0 --exclude-tags schema_validation_only --output_path "$copy/report") \
      >"$copy/runner.log" 2>&1 || true
    "$venv/bin/python" - "$copy/report/report.json" "$copy/runner.log" <<'PY'
import json
import sys

report_path, log_path = sys.argv[1], sys.argv[2]
try:
    report = json.load(open(report_path))
except (OSError, ValueError) as error:
    print(open(log_path).read()[-4000:])
    sys.exit(f"the runner wrote no report: {error}")
passed, failed, skipped = [], [], []
for phase in report["phases"]:
    name = phase["phase_name"].rsplit("/", 1)[-1]
    tests = phase.get("tests", [])
    if not tests:
        skipped.append(name)
    elif phase["status"] == "PASS":
        passed.append(name)
    else:
        failed.append(name)
        for test in tests:
            for case in test.get("cases", []):
                if case.get("status") != "PASS":
                    print(f"  {name} / {test.get('test_name')}: {case.get('case_name')}: {case.get('message')}")
print("conformance (TES 1.1.0, schema_validation_only excluded):")
for label, names in (("passed", passed), ("failed", failed), ("skipped", skipped)):
    print(f"  {label}: {', '.join(sorted(names)) or '-'}")
if failed:
    print(open(log_path).read()[-4000:])
print(f"{len(passed)} passed, {len(failed)} failed")
sys.exit(1 if failed or not passed else 0)
PY
    ;;

  *) usage ;;
esac
