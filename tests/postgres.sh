#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the tests (each test creates its own database).
#
#   tests/postgres.sh up DIR      install if needed, start; writes DIR/env (SH_TEST_POSTGRES_URL)
#   tests/postgres.sh down DIR    stop it
#   tests/postgres.sh stop DIR | start DIR   stop it and start it again, data kept (fault tests)
set -euo pipefail

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && [ -x "$found/initdb" ] && printf '%s' "$found"
}

ensure_installed() {
  bindir >/dev/null && return 0
  log "installing postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bindir >/dev/null || die "postgresql installed, but no initdb found"
}

# The server refuses to run as root: run it as the package's `postgres` user.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

up() {
  local dir=$1
  ensure_installed
  local bin port
  bin=$(bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    # The postgres user must reach DIR; a private temporary parent would stop it.
    chmod a+x "$(dirname "$dir")"
    chown postgres "$dir"
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
    || { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed"; }
  echo "$port" >"$dir/port"
  start "$dir"
  {
    printf 'export SH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:%s/postgres\n' "$port"
    printf 'export SH_TEST_POSTGRES_DIR=%s\n' "$dir"
  } >"$dir/env"
  log "up on 127.0.0.1:$port"
}

# Starts the server `up` set up in DIR, on the same port, and waits until it answers.
start() {
  local dir=$1 bin port
  bin=$(bindir)
  port=$(cat "$dir/port")
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; die "the server did not start"; }
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >/dev/null || die "the server does not answer"
}

down() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_postgres "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
  down | stop) [ $# -eq 2 ] || die "usage: $0 $1 DIR"; down "$2" ;;
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$(cd "$2" && pwd)" ;;
  *) die "usage: $0 up DIR | down DIR | stop DIR | start DIR" ;;
esac
