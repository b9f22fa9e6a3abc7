#!/usr/bin/env bash
# The benchmark (`just bench`): release builds of chat-service, fake-llm and loadgen; a
# fresh database on the local PostgreSQL seeded in bulk with SQL; every scenario at
# several concurrencies through the service, and the same SQL through pgbench at the
# same concurrency (the database ceiling); time to first token through the service
# and straight from fake-llm; start-up time, idle memory, memory with 10,000 open
# streams; a deep chat (a 10,000-message branch): its branch page and a send in it; the
# streamed sends and open streams again with live state on Redis (bench/redis.sh).
# Writes BENCHMARKS.md and bench/results.json (--quick: a short smoke run written under
# target/bench/ instead). Bounded in time; cleans up on any exit.
#
#   bash bench/run.sh [--quick] [--keep]      (--keep: keep logs and raw results)
#   env: PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432, postgres), DB_POOL_SIZE,
#        BENCH_CONCURRENCY ("1 16 64"), BENCH_DURATION (seconds per run)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=full
for a in "$@"; do
  case $a in
    --quick) MODE=quick ;;
    --keep) KEEP_WORK=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument: $a" ;;
  esac
done

if [ "$MODE" = quick ]; then
  CHATS=100000 DUR=${BENCH_DURATION:-2} WARM=0.5 STARTUP_RUNS=2 HOLD_TARGET=1000 HOLD_SECS=3 LIMIT=720
  OUT_MD="$ROOT/target/bench/BENCHMARKS.md" OUT_JSON="$ROOT/target/bench/results.json"
else
  CHATS=1000000 DUR=${BENCH_DURATION:-8} WARM=1 STARTUP_RUNS=5 HOLD_TARGET=10000 HOLD_SECS=10 LIMIT=1800
  OUT_MD="$ROOT/BENCHMARKS.md" OUT_JSON="$ROOT/bench/results.json"
fi
CONCS=${BENCH_CONCURRENCY:-"1 16 64"}
SCENARIOS="list-chats search message-search get-chat list-messages create-chat send stream"

preflight
build_release
guard "$LIMIT"
LG="$BIN/loadgen"
RAW="$WORK/raw"
mkdir -p "$RAW" "$WORK/pglog" "$(dirname "$OUT_MD")"
T0=$(date +%s)

log "database $BENCH_DB: migrate, seed $CHATS chats"
create_db
psql_db -v chats="$CHATS" -f "$ROOT/bench/seed.sql" >"$WORK/seed.log" || die "seeding failed"
MCHATS=$((CHATS / 1000))
log "seed $((CHATS * 2)) messages for message search (heavy user: 10%)"
psql_db -v chats="$CHATS" -f "$ROOT/bench/seed_messages.sql" >>"$WORK/seed.log" || die "seeding messages failed"
log "seed the deep chat: a 10,000-message branch with 300 side branches"
psql_db -f "$ROOT/bench/seed_tree.sql" >>"$WORK/seed.log" || die "seeding the deep chat failed"
MESSAGES=$(psql_db -At -c "SELECT count(*) FROM messages")
SEARCH_INDEX=$(psql_db -At -c "SELECT 'GIN index ' || pg_size_pretty(pg_relation_size('messages_search_idx')) \
  || ', word index ' || pg_size_pretty(pg_relation_size('message_terms_idx')) \
  || ' (its table ' || pg_size_pretty(pg_relation_size('message_terms')) || ')'")
log "messages: $MESSAGES, search indexes: $SEARCH_INDEX"

LLM_PORT=$(free_port)
start fake-llm "$BIN/fake-llm" --addr "127.0.0.1:$LLM_PORT" --ttft-ms 0 --tokens-per-sec 0
wait_ready "http://127.0.0.1:$LLM_PORT/health" || die "fake-llm did not start"

log "start-up: $STARTUP_RUNS starts, time to /readyz 200 and idle memory"
SP=$(free_port)
svc_env "$SP" "$LLM_PORT"
env "${SVC_ENV[@]}" timeout 300 "$LG" startup --exec "$BIN/chat-service" \
  --ready-url "http://127.0.0.1:$SP/readyz" --runs "$STARTUP_RUNS" --idle-secs 2 \
  --log "$WORK/startup.log" --out "$RAW/startup.json" >/dev/null || die "start-up measurement failed"

PORT=$(free_port)
svc_env "$PORT" "$LLM_PORT"
start chat-service env "${SVC_ENV[@]}" "$BIN/chat-service"
SVC=$LAST_PID
wait_ready "http://127.0.0.1:$PORT/readyz" || die "chat-service did not become ready (see $WORK/chat-service.log)"
TARGET="http://127.0.0.1:$PORT"

# Scenario-specific loadgen arguments and pgbench scripts.
svc_args() {
  case $1 in
    create-chat) echo "--users creator:1000" ;;
    list-chats) echo "--users heavy" ;;
    search) echo "--users heavy --query lisbon --query zzqx --query nomatch" ;;
    get-chat) echo "--users u:8999" ;;
    list-messages) echo "--users m:20" ;;
    send | stream) echo "--users sender --chats-per-worker 8" ;;
  esac
}
pg_scripts() {
  local d="$ROOT/bench/pgbench"
  case $1 in
    create-chat) echo "-f $d/create_chat.sql" ;;
    list-chats) echo "-f $d/list_chats.sql" ;;
    search) echo "-f $d/search_common.sql@1 -f $d/search_rare.sql@1 -f $d/search_none.sql@1" ;;
    message-search) echo "-f $d/message_search.sql" ;;
    get-chat) echo "-f $d/get_chat.sql" ;;
    list-messages) echo "-f $d/list_messages.sql" ;;
    send) echo "-f $d/send.sql" ;;
    send-least) echo "-f $d/send_least.sql" ;;
  esac
}

# pgbench's protocol per scenario, as the service sends those statements: diesel
# caches (prepares) plain queries but sends boxed and raw-SQL ones unnamed, planned
# with their values each time (list and search are boxed; inserts carry SQL
# fragments). The send path mixes both; it runs prepared, the stricter ceiling.
# Message search prepares its scan; its script has the one unnamed step planned each
# time (plan_cache_mode, see bench/pgbench/message_search.sql), without a transaction.
pg_mode() {
  case $1 in
    list-chats | search | create-chat) echo extended ;;
    *) echo prepared ;;
  esac
}

# pgbench's sessions get what the service sets on each of its connections that bears on
# plans (crates/infra-postgres/src/store.rs, `set_session`): no JIT; for message search
# also what its connections on the request's thread set (local_reads/search.rs).
PG_SESSION="-c jit=off"
pg_session() {
  case $1 in
    message-search) echo "$PG_SESSION -c enable_sort=off -c default_transaction_read_only=on" ;;
    *) echo "$PG_SESSION" ;;
  esac
}

# pgbench at concurrency C for SCENARIO, capped by the free connection slots.
run_pgbench() {
  local sc=$1 c=$2 base=$3 free clients threads prefix
  free=$(psql -X -At -d postgres -c "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity")
  clients=$((c < free - 5 ? c : free - 5))
  [ "$clients" -ge 1 ] || { log "no free connections for pgbench"; return 0; }
  threads=$((clients < 2 ? clients : 2))
  prefix="$WORK/pglog/$sc-c$c"
  # shellcheck disable=SC2046
  (cd "$WORK/pglog" && PGOPTIONS="$(pg_session "$sc")" timeout $((DUR + 60)) pgbench -n -M "$(pg_mode "$sc")" -c "$clients" -j "$threads" \
    -T "$DUR" -D chats="$CHATS" -D mchats="$MCHATS" -D base="$base" -D st=streaming -D owner=heavy \
    -D pcommon=%lisbon% -D prare=%zzqx% -D pnone=%nomatch% -D qcommon=lisbon -D qrare=zzqx -D qnone=nomatch -D mk=0 -l --log-prefix "$prefix" \
    $(pg_scripts "$sc") "$BENCH_DB") >"$prefix.out" 2>&1 || log "pgbench $sc c=$c failed (see $prefix.out)"
  "$LG" pglog --prefix "$prefix" --summary "$prefix.out" --concurrency "$c" --clients "$clients" \
    --out "$RAW/db-$sc-c$c.json" >/dev/null || log "no pgbench result for $sc c=$c"
  rm -f "$prefix".[0-9]*
}

for sc in $SCENARIOS; do
  i=0
  for c in $CONCS; do
    log "$sc c=$c: service"
    if [ "$sc" = message-search ]; then
      # A common word (30% of messages), a mid one (5%), both (1.5%), a rare one, none.
      ARGS=(--users heavy --query python --query term7 --query "python term7" --query zzqx --query nomatch)
    else
      read -ra ARGS <<<"$(svc_args "$sc")"
    fi
    timeout $((DUR * 3 + 180)) "$LG" run --target "$TARGET" --scenario "$sc" --concurrency "$c" \
      --duration-secs "$DUR" --warmup-secs "$WARM" --rss-pid "$SVC" --timeout-ms 30000 \
      "${ARGS[@]}" --out "$RAW/svc-$sc-c$c.json" >/dev/null \
      || log "loadgen $sc c=$c failed"
    # No pgbench ceiling for stream (provider-bound). message-search's script mirrors
    # the service's choice of statements with \if (bench/pgbench/message_search.sql,
    # -D mk=0: the five queries at random, as the loadgen mixes them).
    if [ "$sc" != stream ]; then
      log "$sc c=$c: pgbench"
      run_pgbench "$sc" "$c" $((i * 512))
    fi
    if [ "$sc" = send ]; then
      log "send c=$c: pgbench, the least SQL a durable send needs"
      run_pgbench send-least "$c" $((i * 512 + 256))
    fi
    i=$((i + 1))
  done
done

# The deep chat (bench/seed_tree.sql): a page of its 10,000-message branch through the
# service (list-messages of user `deep`, after a random cursor) and the same statements
# through pgbench, at every concurrency; a send in it at concurrency 1 (a chat takes one
# turn at a time) and its prompt-history read through pgbench. Raw results:
# $RAW/tree-*.json.
tree_pgbench() { # NAME SCRIPT C
  local prefix="$WORK/pglog/tree-$1-c$3"
  (cd "$WORK/pglog" && PGOPTIONS="$PG_SESSION" timeout $((DUR + 60)) pgbench -n -M prepared -c "$3" -j $(($3 < 2 ? $3 : 2)) \
    -T "$DUR" -l --log-prefix "$prefix" -f "$ROOT/bench/pgbench/$2" "$BENCH_DB") >"$prefix.out" 2>&1 \
    || log "pgbench $1 c=$3 failed (see $prefix.out)"
  "$LG" pglog --prefix "$prefix" --summary "$prefix.out" --concurrency "$3" --clients "$3" \
    --out "$RAW/tree-db-$1-c$3.json" >/dev/null || log "no pgbench result for $1 c=$3"
  rm -f "$prefix".[0-9]*
}
for c in $CONCS; do
  log "branch page of the deep chat c=$c: service, pgbench"
  timeout $((DUR * 3 + 180)) "$LG" run --target "$TARGET" --scenario list-messages --concurrency "$c" \
    --duration-secs "$DUR" --warmup-secs "$WARM" --timeout-ms 30000 --users deep --cursor-below 10880 \
    --out "$RAW/tree-svc-branch-page-c$c.json" >/dev/null || log "loadgen branch page c=$c failed"
  tree_pgbench branch-page branch_page.sql "$c"
done
log "send in the deep chat c=1: service, pgbench (its prompt-history read)"
timeout $((DUR * 3 + 180)) "$LG" run --target "$TARGET" --scenario send --concurrency 1 \
  --duration-secs "$DUR" --warmup-secs "$WARM" --timeout-ms 30000 --users deep --existing-chats \
  --out "$RAW/tree-svc-send-c1.json" >/dev/null || log "loadgen deep send failed"
tree_pgbench branch-history branch_history.sql 1
for f in "$RAW"/tree-*.json; do
  [ -f "$f" ] && log "$(basename "$f" .json): p99 $(jq -r '.latency_ms.p99 // "n/a"' "$f") ms"
done

for c in 1 64; do
  log "time to first token straight from fake-llm, c=$c"
  timeout $((DUR * 3 + 60)) "$LG" run --target "http://127.0.0.1:$LLM_PORT" --scenario llm-direct \
    --concurrency "$c" --duration-secs "$DUR" --warmup-secs "$WARM" --out "$RAW/direct-c$c.json" >/dev/null \
    || log "llm-direct c=$c failed"
  [ -f "$RAW/svc-stream-c$c.json" ] || timeout $((DUR * 3 + 180)) "$LG" run --target "$TARGET" \
    --scenario stream --concurrency "$c" --duration-secs "$DUR" --warmup-secs "$WARM" \
    --users sender --chats-per-worker 8 --out "$RAW/svc-stream-c$c.json" >/dev/null || true
done

# Time to first token over a provider whose own first token takes 100 ms (the level's
# provider), c=1: a service instance of its own pointing at a fake-llm with --ttft-ms 100.
SLOW_TTFT_PORT=$(free_port)
start fake-llm-100 "$BIN/fake-llm" --addr "127.0.0.1:$SLOW_TTFT_PORT" --ttft-ms 100 --tokens-per-sec 0
F100=$LAST_PID
wait_ready "http://127.0.0.1:$SLOW_TTFT_PORT/health" || die "fake-llm (100 ms) did not start"
P100=$(free_port)
svc_env "$P100" "$SLOW_TTFT_PORT"
start chat-service-100 env "${SVC_ENV[@]}" "$BIN/chat-service"
S100=$LAST_PID
wait_ready "http://127.0.0.1:$P100/readyz" || die "chat-service (100 ms provider) did not become ready"
log "time to first token over a 100 ms provider, c=1: straight and through the service"
timeout $((DUR * 3 + 60)) "$LG" run --target "http://127.0.0.1:$SLOW_TTFT_PORT" --scenario llm-direct \
  --concurrency 1 --duration-secs "$DUR" --warmup-secs "$WARM" --out "$RAW/direct100-c1.json" >/dev/null \
  || log "llm-direct (100 ms) failed"
timeout $((DUR * 3 + 180)) "$LG" run --target "http://127.0.0.1:$P100" --scenario stream \
  --concurrency 1 --duration-secs "$DUR" --warmup-secs "$WARM" --users sender100 --chats-per-worker 8 \
  --out "$RAW/svc-stream100-c1.json" >/dev/null || log "stream (100 ms provider) failed"
stop "$S100" 10
stop "$F100" 2

sleep 3
jq -n --argjson rss "$(awk '/VmRSS/ {print $2}' "/proc/$SVC/status")" \
  --argjson hwm "$(awk '/VmHWM/ {print $2}' "/proc/$SVC/status")" \
  '{rss_kib: $rss, hwm_kib: $hwm}' >"$RAW/idle.json"
stop "$SVC" 20

# Open streams per run: each costs the service two descriptors (client and provider).
NOFILE=$(ulimit -Hn)
HOLD=$(((NOFILE - 400) / 2))
[ "$HOLD" -gt "$HOLD_TARGET" ] && HOLD=$HOLD_TARGET

# Live state on Redis, right after the runs it is compared with (and before the open
# streams below, whose thousands of events the next instance's relay would still be
# publishing during its runs).
# shellcheck source=bench/redis.sh
source "$ROOT/bench/redis.sh"
bench_redis

# Memory with many open streams: a provider that answers headers and then waits
# minutes before the first token keeps every stream open and idle.
log "holding $HOLD streams (target $HOLD_TARGET, fd limit $NOFILE)"
SLOW_PORT=$(free_port)
start fake-llm-slow "$BIN/fake-llm" --addr "127.0.0.1:$SLOW_PORT" --ttft-ms 600000
SLOW=$LAST_PID
wait_ready "http://127.0.0.1:$SLOW_PORT/health" || die "slow fake-llm did not start"
HP=$(free_port)
svc_env "$HP" "$SLOW_PORT"
start chat-service-hold env "${SVC_ENV[@]}" LLM_FIRST_TOKEN_TIMEOUT_MS=900000 \
  LLM_IDLE_TIMEOUT_MS=900000 LLM_TOTAL_TIMEOUT_MS=900000 LLM_STALE_REPLY_SECS=1000 "$BIN/chat-service"
HSVC=$LAST_PID
wait_ready "http://127.0.0.1:$HP/readyz" || die "chat-service (hold) did not become ready"
sleep 1
timeout 600 "$LG" hold --target "http://127.0.0.1:$HP" --streams "$HOLD" --hold-secs "$HOLD_SECS" \
  --open-concurrency 64 --open-timeout-secs 300 --rss-pid "$HSVC" --out "$RAW/hold.json" >/dev/null \
  || log "hold failed"
jq --argjson t "$HOLD_TARGET" --argjson n "$NOFILE" '. + {target_streams: $t, fd_limit: $n}' \
  "$RAW/hold.json" >"$RAW/hold.tmp" 2>/dev/null && mv "$RAW/hold.tmp" "$RAW/hold.json"
stop "$SLOW" 2
stop "$HSVC" 15


jq -n --arg mode "$MODE" --argjson chats "$CHATS" --argjson dur "$DUR" --argjson warm "$WARM" \
  --argjson messages "${MESSAGES:-0}" --arg search_index "${SEARCH_INDEX:-n/a}" \
  --arg concs "$CONCS" --arg rev "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg dirty "$(git -C "$ROOT" status --porcelain -- . ':!BENCHMARKS.md' ':!bench/results.json' 2>/dev/null | grep -q . && echo yes || echo no)" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
  --argjson cpus "$(nproc)" --argjson mem "$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)" \
  --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  --arg pg "$(psql -X -At -d postgres -c 'SHOW server_version')" \
  --arg pgconf "$(psql -X -At -d postgres -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','synchronous_commit','fsync','max_connections','wal_sync_method')")" \
  --arg pool "${DB_POOL_SIZE:-8 (default)}" --argjson nofile "$NOFILE" \
  --arg ports "$(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' '-')" \
  --argjson secs "$(($(date +%s) - T0))" \
  '{mode: $mode, chats: $chats, messages: $messages, search_index: $search_index,
    duration_s: $dur, warmup_s: $warm,
    concurrency: ($concs | split(" ") | map(select(. != "") | tonumber)), git: $rev, dirty: $dirty,
    date: $date, kernel: $kernel, cpus: $cpus, mem_mib: $mem, cpu: $cpu, postgres: $pg,
    postgres_settings: $pgconf, db_pool_size: $pool, fd_limit: $nofile,
    ephemeral_ports: $ports, run_s: $secs}' >"$RAW/meta.json"

"$LG" report --raw "$RAW" --analysis "$ROOT/bench/analysis.md" --json-out "$OUT_JSON" \
  --md-out "$OUT_MD" >/dev/null || die "report failed"
log "done in $(($(date +%s) - T0))s: $OUT_MD, $OUT_JSON"
