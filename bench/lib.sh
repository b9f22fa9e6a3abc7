# Shared helpers of bench/run.sh and bench/faults.sh (sourced, not run): loopback
# ports, processes started in the background and always stopped, a throw-away
# database dropped on exit, a watchdog bounding the whole run.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
# PostgreSQL is on loopback here: no TLS, for the service (DB_SSLMODE) and for psql and
# pgbench (PGSSLMODE) alike, so neither side pays for a handshake the other does not.
export PGSSLMODE=${PGSSLMODE:-disable} DB_SSLMODE=${DB_SSLMODE:-disable}
# BENCH_PROFILE=debug runs the debug builds: only to check that a script works (its
# figures mean nothing); the default is the release build.
BENCH_PROFILE=${BENCH_PROFILE:-release}
case $BENCH_PROFILE in
  release) BIN="$ROOT/target/release" ;;
  debug) BIN="$ROOT/target/debug" ;;
  *) echo "BENCH_PROFILE must be release or debug" >&2; exit 2 ;;
esac
BENCH_DB="chat_bench_$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench.XXXXXX")
PIDS=()
KEEP_WORK=${KEEP_WORK:-0}
JWT_SECRET="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export JWT_SECRET

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# A free TCP port on 127.0.0.1 (bound and released by the kernel's choice).
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  else
    local p
    while :; do
      p=$((20000 + RANDOM % 12000))
      ss -ltn "sport = :$p" | grep -q LISTEN || { echo "$p"; return; }
    done
  fi
}

# start NAME CMD… : runs CMD in the background, output to $WORK/NAME.log; its pid is
# left in LAST_PID (and stopped on exit). Call it directly, not in $(…): CMD must be an
# executable (e.g. `env VAR=… prog`), so that the pid is the program's own.
start() {
  local name=$1; shift
  "$@" >>"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop PID [SECS]: SIGTERM, wait up to SECS (default 10), then SIGKILL.
stop() {
  local pid=$1 secs=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid still running after ${secs}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# Waits until URL answers 200 (at most SECS, default 30).
wait_ready() {
  local url=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 20; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
    sleep 0.05
  done
  return 1
}

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$BENCH_DB" "$@"; }

create_db() {
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $BENCH_DB" >/dev/null
  DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$BENCH_DB" "$BIN/chat-service" migrate \
    >>"$WORK/migrate.log" 2>&1 || die "migrations failed (see $WORK/migrate.log)"
}

drop_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
}

# Sets SVC_ENV to the environment of a chat-service on the bench database:
# svc_env HTTP_PORT LLM_PORT; use as `env "${SVC_ENV[@]}" [VAR=…] chat-service`.
svc_env() {
  SVC_ENV=(
    "DATABASE_URL=postgres://$PGUSER@$PGHOST:$PGPORT/$BENCH_DB"
    "DB_SSLMODE=$DB_SSLMODE" # loopback: no TLS (see the top of this file)
    "HTTP_ADDR=127.0.0.1:$1" "LLM_BASE_URL=http://127.0.0.1:$2/v1"
    "JWT_SECRET=$JWT_SECRET" RATE_LIMIT_API_PER_SEC=0 RATE_LIMIT_SENDS_PER_MIN=0
    "LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}" LOG_FORMAT=json
    "HTTP_SHUTDOWN_DRAIN_SECS=${DRAIN_SECS:-10}"
  )
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do stop "$pid" 5; done
  drop_db
  if [ "$rc" -ne 0 ] || [ "$KEEP_WORK" = 1 ]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

# Starts a watchdog that ends the run after SECS (call it after the build).
guard() {
  local secs=$1 me=$$
  ( sleep "$secs"; log "watchdog: the run exceeded ${secs}s, stopping it"; kill -TERM "$me" ) 2>/dev/null &
  WATCHDOG=$!
}

# Checks the tools and the database, raises the fd limit to the hard limit.
preflight() {
  local t
  for t in cargo psql pgbench curl jq; do
    command -v "$t" >/dev/null || die "$t is not installed"
  done
  pg_isready -q -h "$PGHOST" -p "$PGPORT" || die "PostgreSQL is not answering on $PGHOST:$PGPORT"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

build_release() {
  local profile=()
  [ "$BENCH_PROFILE" = release ] && profile=(--release)
  log "building $BENCH_PROFILE binaries (chat-service, fake-llm, loadgen)"
  (cd "$ROOT" && cargo build "${profile[@]}" -q -p api-actix -p fake-llm -p loadgen) \
    || die "$BENCH_PROFILE build failed"
}

trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
