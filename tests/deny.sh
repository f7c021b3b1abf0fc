#!/usr/bin/env bash
# Checks the dependency graph with cargo-deny (deny.toml): licences, bans, sources, and advisories
# against the RustSec database snapshot in the shared folder beside the repository
# (shared/rustsec-advisory-db, dated in its SNAPSHOT file), never fetched from the network.
#
#   tests/deny.sh    install cargo-deny (cached under ~/.cache/submission-helper/) and check
#
# SH_SHARED_DIR names the shared folder when it is not beside the repository.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
cache="${SUBMISSION_HELPER_CACHE:-$HOME/.cache/submission-helper}"
version="0.20.2"
tool="$cache/cargo-deny-$version"

die() { echo "tests/deny.sh: $*" >&2; exit 1; }

# The shared folder: beside the repository, or beside the main checkout of a worktree.
shared_dir() {
  local common candidate
  common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for candidate in "${SH_SHARED_DIR:-}" "$root/../shared" "${common:+$(dirname "$common")/../shared}"; do
    if [ -n "$candidate" ] && [ -d "$candidate/rustsec-advisory-db/crates" ]; then
      (cd "$candidate" && pwd)
      return
    fi
  done
  die "the shared folder with rustsec-advisory-db was not found beside $root (set SH_SHARED_DIR)"
}

if [ ! -x "$tool/bin/cargo-deny" ]; then
  echo "building cargo-deny $version (about 5 minutes on 2 cores; cached in $tool)"
  # Older versions are removed: only the one in use is kept.
  rm -rf "$cache"/cargo-deny-*
  cargo install --quiet --locked "cargo-deny@$version" --root "$tool.partial"
  mv "$tool.partial" "$tool"
fi

snapshot="$(shared_dir)/rustsec-advisory-db"
work=$(mktemp -d "${TMPDIR:-/tmp}/submission-helper-deny.XXXXXX")
trap 'rm -rf "$work"' EXIT

# cargo-deny opens the database of its default URL at this name under db-path, and takes the
# database's age from .git/FETCH_HEAD: the copy is dated as the snapshot is, so a snapshot older
# than deny.toml's maximum-db-staleness fails the check instead of passing silently.
db="$work/db/advisory-db-3157b0e258782691"
mkdir -p "$db/.git"
cp -r "$snapshot/." "$db/"
taken=$(grep -o '([0-9-]*)' "$snapshot/SNAPSHOT" | tr -d '()') || die "no date in $snapshot/SNAPSHOT"
touch "$db/.git/FETCH_HEAD"
touch -d "$taken" "$db/.git/FETCH_HEAD"
sed "s#^db-path = .*#db-path = \"$work/db\"#" deny.toml >"$work/deny.toml"

# The check reads every package of the lock file, those of other platforms too, which a build
# here never downloads: fetch them from crates.io first (quick once they are in cargo's cache).
cargo fetch --locked --quiet

echo "advisories: $(head -n 1 "$snapshot/SNAPSHOT")"
"$tool/bin/cargo-deny" --offline --config "$work/deny.toml" check --show-stats \
  advisories bans licenses sources
