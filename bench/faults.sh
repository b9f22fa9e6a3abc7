#!/usr/bin/env bash
# The fault suite (`just faults`): chat-service (release, PostgreSQL-backed) under load
# while things break. Every scenario records each write the service acknowledged
# (loadgen --acks) and then checks with psql that all of them are in the database,
# that no request hung (every request is bounded; none may hit the bound), that every
# chat's seq is 1..n without gaps and matches message_count, and its own expectations:
#   pg-restart   PostgreSQL stopped for a few seconds and started again under load:
#                503s while it is down, recovery without restarting the service
#   provider     fake-llm injecting 429, 500, stream cuts and stalls under load
#   disconnects  hundreds of clients hanging up mid-stream: replies still stored complete
#   sigterm      SIGTERM under load: exits within the drain time, no reply left streaming
#   replicas     two services on one database sending to the same chats
#   redis-stop   two replicas sharing a Redis (one of this run's own, never the machine's
#                6379) that is killed under load and started again empty: no 5xx, nothing
#                acknowledged lost, /readyz stays 200 reporting redis unavailable, and
#                both replicas report it ok again by themselves
#   replica-kill SIGKILL of the replica generating a reply mid-stream: the other replica
#                marks it failed with its partial text within 30 s and the chat accepts a
#                send again (needs redis-server, as redis-stop)
#   kafka-restart events to a Kafka-protocol broker (tansu, in-memory storage) that is
#                killed under load and restarted empty (no memory of the producer): every
#                event committed before it came back is published within 30 s of that
#                (needs `tansu`: `just tansu`; TANSU=path overrides)
# Restarts the local PostgreSQL cluster (pg-restart): run it only on a machine where
# that is acceptable — it is never run by `cargo test`. Not part of CI (several minutes).
#
#   bash bench/faults.sh [--keep] [scenario…]      (default: all, in the order above)
#   env: PG_CLUSTER (default "15 main"), PGHOST/PGPORT/PGUSER
# Writes target/faults/results.json; exits non-zero if any scenario fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL="pg-restart provider disconnects sigterm replicas redis-stop replica-kill kafka-restart"
WANT=""
for a in "$@"; do
  case $a in
    --keep) KEEP_WORK=1 ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    pg-restart | provider | disconnects | sigterm | replicas | redis-stop | replica-kill | kafka-restart) WANT="$WANT $a" ;;
    *) die "unknown argument: $a" ;;
  esac
done
WANT=${WANT:-$ALL}
read -r -a PG_CLUSTER_ARGS <<<"${PG_CLUSTER:-15 main}"
OUT="$ROOT/target/faults"
mkdir -p "$OUT"

preflight
build_release
guard 1200
LG="$BIN/loadgen"
create_db
RESULTS=()
FAILED=0

# A fake-llm with the given flags; its port in FAKE_PORT.
fake() {
  local name=$1; shift
  FAKE_PORT=$(free_port)
  start "$name" "$BIN/fake-llm" --addr "127.0.0.1:$FAKE_PORT" "$@"
  wait_ready "http://127.0.0.1:$FAKE_PORT/health" || die "$name did not start"
}

# A chat-service on the bench database using the fake-llm at LLM_PORT; pid in
# SVC_PID, port in SVC_PORT. Extra VAR=value arguments are added to its environment.
service() {
  local name=$1 llm=$2; shift 2
  SVC_PORT=$(free_port)
  svc_env "$SVC_PORT" "$llm"
  start "$name" env "${SVC_ENV[@]}" "$@" "$BIN/chat-service"
  SVC_PID=$LAST_PID
  wait_ready "http://127.0.0.1:$SVC_PORT/readyz" || die "$name did not become ready"
}

# loadgen run in the background: lg_bg NAME ARGS… (result in $WORK/NAME.json).
lg_bg() {
  local name=$1; shift
  "$LG" run --timeout-ms 20000 --timeline --acks "$WORK/$name.acks" --out "$WORK/$name.json" "$@" \
    >/dev/null 2>>"$WORK/$name.err" &
  LG_PIDS+=("$!")
}
lg_wait() {
  local p rc=0
  for p in "${LG_PIDS[@]}"; do wait "$p" || rc=1; done
  LG_PIDS=()
  return $rc
}

# Loads the acknowledged writes of the named loadgen runs into table `acks`.
load_acks() {
  local name
  psql_db -c "DROP TABLE IF EXISTS acks; CREATE TABLE acks (kind text, id uuid, chat_id uuid, status text)" 2>/dev/null
  for name in "$@"; do
    [ -s "$WORK/$name.acks" ] && psql_db -c "\\copy acks FROM '$WORK/$name.acks' WITH (FORMAT csv)"
  done
  return 0
}

# Waits (up to SECS) until no reply of the loaded scenario's chats is `streaming`.
settle() {
  local secs=${1:-30} i n
  for ((i = 0; i < secs * 4; i++)); do
    n=$(psql_db -At -c "SELECT count(*) FROM messages WHERE status = 'streaming'
      AND chat_id IN (SELECT id FROM acks WHERE kind = 'chat')")
    [ "$n" = 0 ] && return 0
    sleep 0.25
  done
  return 1
}

# The database checks over every acknowledged write of the named loadgen runs (JSON).
check_db() {
  load_acks "$@"
  # Scope: the chats this scenario's load generators created (all of them are acked).
  psql_db -At <<'SQL'
WITH scope AS (SELECT id FROM acks WHERE kind = 'chat'),
     msgs AS (SELECT m.* FROM messages m WHERE m.chat_id IN (SELECT id FROM scope))
SELECT json_build_object(
  'acked', (SELECT count(*) FROM acks),
  'acked_chats', (SELECT count(*) FROM acks WHERE kind = 'chat'),
  'acked_messages', (SELECT count(*) FROM acks WHERE kind = 'user'),
  'acked_replies', (SELECT count(*) FROM acks WHERE kind = 'reply'),
  'missing_chats', (SELECT count(*) FROM acks a WHERE kind = 'chat'
      AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.id = a.id)),
  'missing_messages', (SELECT count(*) FROM acks a WHERE kind = 'user'
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.id AND m.chat_id = a.chat_id AND m.role = 'user')),
  'replies_not_as_acked', (SELECT count(*) FROM acks a WHERE kind = 'reply'
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.id AND m.role = 'assistant' AND m.status = a.status)),
  'acked_messages_without_finished_reply', (SELECT count(*) FROM acks a JOIN messages u ON u.id = a.id
      WHERE a.kind = 'user' AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.chat_id = u.chat_id
        AND r.seq = u.seq + 1 AND r.role = 'assistant' AND r.status <> 'streaming')),
  'acked_messages_without_complete_reply', (SELECT count(*) FROM acks a JOIN messages u ON u.id = a.id
      WHERE a.kind = 'user' AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.chat_id = u.chat_id
        AND r.seq = u.seq + 1 AND r.role = 'assistant' AND r.status = 'complete')),
  'streaming_left', (SELECT count(*) FROM msgs WHERE status = 'streaming'),
  'streaming_left_detail', (SELECT coalesce(json_agg(json_build_object(
        'reply', r.id, 'chat', r.chat_id, 'seq', r.seq, 'created_at', r.created_at,
        'user_message_acked', EXISTS (SELECT 1 FROM acks a JOIN messages u ON u.id = a.id
          WHERE a.kind = 'user' AND u.chat_id = r.chat_id AND u.seq = r.seq - 1))), '[]'::json)
      FROM msgs r WHERE r.status = 'streaming'),
  'chats_with_seq_gaps', (SELECT count(*) FROM (SELECT chat_id FROM msgs GROUP BY chat_id
      HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)) g),
  'chats_with_wrong_count', (SELECT count(*) FROM chats c WHERE c.id IN (SELECT id FROM scope)
      AND c.message_count <> (SELECT count(*) FROM messages m WHERE m.chat_id = c.id)),
  'messages', (SELECT count(*) FROM msgs),
  'failed_replies', (SELECT count(*) FROM msgs WHERE status = 'failed')
);
SQL
}

# The loadgen totals of the named runs (JSON).
lg_totals() {
  local files=() n
  for n in "$@"; do [ -s "$WORK/$n.json" ] && files+=("$WORK/$n.json"); done
  [ ${#files[@]} -gt 0 ] || { echo '{}'; return; }
  jq -s '{
    requests: (map(.requests) | add), ok: (map(.ok) | add),
    timeouts: (map(.timeouts) | add), hung_workers: (map(.hung_workers) | add),
    transport_errors: (map(.transport_errors) | add), disconnected: (map(.disconnected) | add),
    statuses: (map(.statuses | to_entries) | add | group_by(.key)
               | map({key: .[0].key, value: (map(.value) | add)}) | from_entries)
  }' "${files[@]}"
}

# record NAME JQ-ASSERTION LOADGEN-JSON DB-JSON EXTRA-JSON: evaluates the scenario's
# assertion (a jq expression over {lg, db, extra}) plus the common ones.
record() {
  local name=$1 expr=$2 lg=$3 db=$4 extra=$5 v pass
  v=$(jq -n --argjson lg "$lg" --argjson db "$db" --argjson extra "$extra" --arg name "$name" '
    {lg: $lg, db: $db, extra: $extra} as $r
    | ([
        ($lg.timeouts == 0), ($lg.hung_workers == 0),
        ($db.missing_chats == 0), ($db.missing_messages == 0), ($db.replies_not_as_acked == 0),
        ($db.chats_with_seq_gaps == 0), ($db.chats_with_wrong_count == 0), ($db.acked > 0)
      ] | all) as $common
    | ($r | '"$expr"') as $own
    | {scenario: $name, pass: ($common and $own), common_checks: $common, scenario_checks: $own,
       loadgen: $lg, database: $db, extra: $extra}')
  RESULTS+=("$v")
  pass=$(jq -r .pass <<<"$v")
  if [ "$pass" = true ]; then log "PASS $name"; else log "FAIL $name: $(jq -c . <<<"$v")"; FAILED=1; fi
}

stop_all_services() {
  local p
  for p in "$@"; do stop "$p" 15; done
}

LG_PIDS=()

# --- PostgreSQL stopped and started under load ------------------------------------
# Replies left `streaming` here are reported (database.streaming_left_detail), not
# failed: none of them was acknowledged, but each blocks its chat (409) until
# llm.stale_reply_secs.
sc_pg_restart() {
  command -v pg_ctlcluster >/dev/null || { log "pg_ctlcluster missing: pg-restart skipped"; return; }
  fake fake-pg --ttft-ms 0
  service svc-pg "$FAKE_PORT" DB_WAIT_TIMEOUT_MS=1000 DB_CONNECT_TIMEOUT_MS=1000
  local t="http://127.0.0.1:$SVC_PORT" pid=$SVC_PID
  lg_bg pg-send --target "$t" --scenario send --concurrency 12 --duration-secs 25 --users pgr-send
  lg_bg pg-stream --target "$t" --scenario stream --concurrency 8 --duration-secs 25 --users pgr-stream
  lg_bg pg-create --target "$t" --scenario create-chat --concurrency 2 --duration-secs 25 --users pgr-create:10
  sleep 7
  log "pg-restart: stopping PostgreSQL (${PG_CLUSTER_ARGS[*]}) for 4 s"
  pg_ctlcluster --skip-systemctl-redirect "${PG_CLUSTER_ARGS[@]}" stop -m fast
  sleep 1
  local down_ready
  down_ready=$(curl -s -o /dev/null -w '%{http_code}' "$t/readyz" || true)
  sleep 3
  pg_ctlcluster --skip-systemctl-redirect "${PG_CLUSTER_ARGS[@]}" start
  log "pg-restart: PostgreSQL started again"
  lg_wait || true
  # Recovery: the same process answers again, without a restart.
  lg_bg pg-after --target "$t" --scenario send --concurrency 4 --duration-secs 4 --users pgr-after
  lg_wait || true
  load_acks pg-send pg-stream pg-create pg-after
  settle 20 || true
  local up_ready alive=false
  up_ready=$(curl -s -o /dev/null -w '%{http_code}' "$t/readyz" || true)
  kill -0 "$pid" 2>/dev/null && alive=true
  record pg-restart '(.lg.statuses["503"] // 0) > 0 and .extra.after.ok > 0
      and (.extra.after.statuses["503"] // 0) == 0 and .extra.readyz_while_down == "503"
      and .extra.readyz_after == "200" and .extra.same_process' \
    "$(lg_totals pg-send pg-stream pg-create)" "$(check_db pg-send pg-stream pg-create pg-after)" \
    "$(jq -n --argjson after "$(lg_totals pg-after)" --arg d "$down_ready" --arg u "$up_ready" \
        --argjson alive "$alive" '{after: $after, readyz_while_down: $d, readyz_after: $u, same_process: $alive}')"
  stop_all_services "$pid"
}

# --- Provider failures under load --------------------------------------------------
sc_provider() {
  fake fake-faulty --ttft-ms 0 --tokens-per-sec 200 --reply-tokens 20 --fault-rate 0.3 \
    --fault-kinds 429,500,cut,stall,stall-mid --stall-ms 5000 --retry-after-secs 1
  service svc-provider "$FAKE_PORT" LLM_FIRST_TOKEN_TIMEOUT_MS=1500 LLM_IDLE_TIMEOUT_MS=1500 \
    LLM_TOTAL_TIMEOUT_MS=4000 LLM_MAX_RETRIES=1
  local t="http://127.0.0.1:$SVC_PORT" pid=$SVC_PID
  lg_bg pv-send --target "$t" --scenario send --concurrency 16 --duration-secs 15 --users pv-send
  lg_bg pv-stream --target "$t" --scenario stream --concurrency 16 --duration-secs 15 --users pv-stream
  lg_wait || true
  load_acks pv-send pv-stream
  local settled=true
  settle 20 || settled=false
  record provider '((.lg.statuses["502"] // 0) + (.lg.statuses["504"] // 0)) > 0 and .lg.ok > 0
      and .db.streaming_left == 0 and .db.acked_messages_without_finished_reply == 0
      and .db.failed_replies > 0 and .extra.settled' \
    "$(lg_totals pv-send pv-stream)" "$(check_db pv-send pv-stream)" \
    "$(jq -n --argjson s "$settled" '{settled: $s}')"
  stop_all_services "$pid"
}

# --- Clients hanging up mid-stream ---------------------------------------------------
sc_disconnects() {
  fake fake-slowish --ttft-ms 20 --tokens-per-sec 40 --reply-tokens 20
  service svc-disc "$FAKE_PORT"
  local t="http://127.0.0.1:$SVC_PORT" pid=$SVC_PID
  lg_bg dc-delta --target "$t" --scenario stream --concurrency 100 --duration-secs 10 \
    --users dc-delta --chats-per-worker 3 --disconnect-after delta
  lg_bg dc-message --target "$t" --scenario stream --concurrency 100 --duration-secs 10 \
    --users dc-message --chats-per-worker 3 --disconnect-after message
  lg_wait || true
  load_acks dc-delta dc-message
  local settled=true
  settle 30 || settled=false
  record disconnects '.lg.disconnected >= 200 and .db.streaming_left == 0
      and .db.acked_messages_without_complete_reply == 0 and .extra.settled' \
    "$(lg_totals dc-delta dc-message)" "$(check_db dc-delta dc-message)" \
    "$(jq -n --argjson s "$settled" '{settled: $s}')"
  stop_all_services "$pid"
}

# --- SIGTERM under load --------------------------------------------------------------
sc_sigterm() {
  fake fake-term --ttft-ms 50 --tokens-per-sec 20 --reply-tokens 20
  local drain=15
  service svc-term "$FAKE_PORT" HTTP_SHUTDOWN_DRAIN_SECS=$drain
  local t="http://127.0.0.1:$SVC_PORT" pid=$SVC_PID
  lg_bg st-send --target "$t" --scenario send --concurrency 16 --duration-secs 12 --users st-send
  lg_bg st-stream --target "$t" --scenario stream --concurrency 16 --duration-secs 12 --users st-stream
  sleep 5
  log "sigterm: SIGTERM to chat-service $pid"
  local t0 exited=false secs rc=0
  t0=$(date +%s%N)
  kill -TERM "$pid"
  for ((i = 0; i < (drain + 10) * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { exited=true; break; }
    sleep 0.1
  done
  secs=$((($(date +%s%N) - t0) / 1000000))
  if [ "$exited" = true ]; then wait "$pid" 2>/dev/null || rc=$?; else stop "$pid" 1; fi
  lg_wait || true
  record sigterm '.extra.exited and .extra.exit_code == 0 and .db.streaming_left == 0
      and .db.acked_messages_without_finished_reply == 0' \
    "$(lg_totals st-send st-stream)" "$(check_db st-send st-stream)" \
    "$(jq -n --argjson e "$exited" --argjson rc "$rc" --argjson ms "$secs" --argjson d "$drain" \
        '{exited: $e, exit_code: $rc, ms_to_exit: $ms, drain_secs: $d}')"
}

# --- Two replicas, one database, the same chats ---------------------------------------
sc_replicas() {
  fake fake-rep --ttft-ms 2 --tokens-per-sec 0
  service svc-rep-a "$FAKE_PORT"
  local a="http://127.0.0.1:$SVC_PORT" pa=$SVC_PID
  service svc-rep-b "$FAKE_PORT"
  local b="http://127.0.0.1:$SVC_PORT" pb=$SVC_PID
  lg_bg rp-send --target "$a" --target "$b" --scenario send --concurrency 24 --duration-secs 15 \
    --users rp-shared --shared-chats 6
  lg_bg rp-stream --target "$b" --target "$a" --scenario stream --concurrency 24 --duration-secs 15 \
    --users rp-shared2 --shared-chats 6
  lg_wait || true
  load_acks rp-send rp-stream
  settle 20 || true
  record replicas '(.lg.statuses["409"] // 0) > 0 and .lg.ok > 0 and .db.streaming_left == 0
      and .db.chats_with_seq_gaps == 0' \
    "$(lg_totals rp-send rp-stream)" "$(check_db rp-send rp-stream)" '{}'
  stop_all_services "$pa" "$pb"
}

# --- Kafka broker killed under load and restarted empty ---------------------------
TANSU=${TANSU:-$(command -v tansu || echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu")}

# tansu_start NAME PORT: a tansu broker with in-memory storage on 127.0.0.1:PORT, the
# events topic created; pid in TANSU_PID.
tansu_start() {
  local name=$1 port=$2 i
  start "$name" env RUST_LOG=warn "$TANSU" broker \
    --kafka-listener-url "tcp://127.0.0.1:$port" \
    --kafka-advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "memory://tansu/"
  TANSU_PID=$LAST_PID
  for ((i = 0; i < 200; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  "$TANSU" topic create chat-events --partitions 3 --broker "tcp://127.0.0.1:$port" \
    >>"$WORK/$name.log" 2>&1 || die "$name: creating the topic failed (see $WORK/$name.log)"
}

sc_kafka_restart() {
  [ -x "$TANSU" ] || die "kafka-restart needs tansu (a Kafka-protocol broker): run 'just tansu' (cargo install tansu --locked --features dynostore: its in-memory storage needs that feature), or set TANSU"
  local kport
  kport=$(free_port)
  tansu_start tansu-1 "$kport"
  fake fake-kafka --ttft-ms 0
  service svc-kafka "$FAKE_PORT" "KAFKA_BROKERS=127.0.0.1:$kport"
  local t="http://127.0.0.1:$SVC_PORT" pid=$SVC_PID
  lg_bg kr-send --target "$t" --scenario send --concurrency 4 --duration-secs 30 --users kr-send
  sleep 6
  local before
  before=$(psql_db -At -c "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
  log "kafka-restart: $before events published; killing the broker"
  kill -KILL "$TANSU_PID"
  sleep 6
  tansu_start tansu-2 "$kport"
  local back
  back=$(psql_db -At -c "SELECT statement_timestamp()")
  log "kafka-restart: broker back, empty, at $back"
  lg_wait || true
  local i left=1
  for ((i = 0; i < 240; i++)); do
    left=$(psql_db -At -c "SELECT count(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL")
    [ "$left" = 0 ] && break
    sleep 0.25
  done
  local extra
  extra=$(psql_db -At <<SQL
SELECT json_build_object(
  'published_before_outage', $before,
  'waiting_when_back', (SELECT count(*) FROM outbox WHERE created_at <= '$back'
      AND (published_at IS NULL OR published_at > '$back')),
  'drain_secs', (SELECT coalesce(round(extract(epoch FROM max(published_at) - '$back'::timestamptz)::numeric, 1), 0)
      FROM outbox WHERE created_at <= '$back'),
  'left', (SELECT count(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL),
  'dead', (SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL),
  'events', (SELECT count(*) FROM outbox),
  'producer_replaced', $(grep -c 'Kafka producer replaced' "$WORK/svc-kafka.log" || true))
SQL
)
  record kafka-restart '.extra.published_before_outage > 0 and .extra.waiting_when_back > 0
      and .extra.left == 0 and .extra.dead == 0 and .extra.drain_secs <= 30' \
    "$(lg_totals kr-send)" "$(check_db kr-send)" "$extra"
  stop_all_services "$pid" "$TANSU_PID"
}

# shellcheck source=bench/faults_redis.sh
source "$(dirname "${BASH_SOURCE[0]}")/faults_redis.sh"

for s in $WANT; do
  log "scenario $s"
  "sc_${s//-/_}"
done

printf '%s\n' "${RESULTS[@]}" | jq -s '{date: (now | todate), scenarios: .}' >"$OUT/results.json"
jq -r '.scenarios[] | select(.database.streaming_left > 0)
  | "NOTE  \(.scenario): \(.database.streaming_left) repl(ies) left streaming (chat blocked until llm.stale_reply_secs): \(.database.streaming_left_detail | tostring)"' \
  "$OUT/results.json"
jq -r '.scenarios[] | "\(if .pass then "PASS" else "FAIL" end)  \(.scenario)  requests=\(.loadgen.requests) ok=\(.loadgen.ok) statuses=\(.loadgen.statuses | tostring) acked=\(.database.acked) missing=\(.database.missing_chats + .database.missing_messages + .database.replies_not_as_acked) streaming_left=\(.database.streaming_left) timeouts=\(.loadgen.timeouts)"' \
  "$OUT/results.json"
log "results: $OUT/results.json"
[ "$FAILED" = 0 ] || die "some fault scenarios failed"
