# Fault scenarios of live replies on Redis (sourced by bench/faults.sh; uses its
# helpers). Each starts a redis-server of its own on a free port — never the
# machine's 6379 — and kills only that one.

# redis_start NAME PORT: a redis-server on 127.0.0.1:PORT without persistence; pid in REDIS_PID.
redis_start() {
  local name=$1 port=$2 i
  command -v redis-server >/dev/null || die "$name needs redis-server (apt-get install redis-server)"
  start "$name" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no
  REDIS_PID=$LAST_PID
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  die "$name did not start"
}

# The state of the `redis` check in a service's /readyz, and its HTTP status.
redis_check() { curl -s --max-time 5 "$1/readyz" | jq -r '.checks.redis // "absent"'; }
ready_status() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$1/readyz"; }

# Redis operations a service counted as unavailable or timed out (from /metrics).
redis_failed_ops() {
  curl -s --max-time 5 "$1/metrics" \
    | awk '/^redis_operations_total\{.*outcome="(unavailable|timeout)"/ {n += $2} END {print n + 0}'
}

# An HS256 token for SUB, signed with the bench's JWT_SECRET.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() {
  local h p sig now
  now=$(date +%s)
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s","iat":%d,"exp":%d}' "$1" "$now" $((now + 3600)) | b64url)
  sig=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$JWT_SECRET" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$sig"
}

# --- Redis killed under load and started again, empty -------------------------------
sc_redis_stop() {
  local rport prefix
  rport=$(free_port)
  prefix="faults-$$:"
  redis_start redis-1 "$rport"
  fake fake-redis --ttft-ms 5 --tokens-per-sec 400 --reply-tokens 24
  service svc-redis-a "$FAKE_PORT" "REDIS_URL=redis://127.0.0.1:$rport" "REDIS_KEY_PREFIX=$prefix"
  local a="http://127.0.0.1:$SVC_PORT" pa=$SVC_PID
  service svc-redis-b "$FAKE_PORT" "REDIS_URL=redis://127.0.0.1:$rport" "REDIS_KEY_PREFIX=$prefix"
  local b="http://127.0.0.1:$SVC_PORT" pb=$SVC_PID
  local before_a before_b
  before_a=$(redis_check "$a")
  before_b=$(redis_check "$b")
  lg_bg rs-send --target "$a" --target "$b" --scenario send --concurrency 8 --duration-secs 20 --users rs-send
  lg_bg rs-stream --target "$b" --target "$a" --scenario stream --concurrency 8 --duration-secs 20 --users rs-stream
  sleep 5
  log "redis-stop: SIGKILL to redis-server $REDIS_PID (port $rport)"
  kill -KILL "$REDIS_PID"
  sleep 6
  local down_status down_check
  down_status=$(ready_status "$a")
  down_check=$(redis_check "$a")
  redis_start redis-2 "$rport"
  local i recovered=false t0 secs
  t0=$(date +%s%N)
  for ((i = 0; i < 300; i++)); do
    if [ "$(redis_check "$a")" = ok ] && [ "$(redis_check "$b")" = ok ]; then recovered=true; break; fi
    sleep 0.1
  done
  secs=$((($(date +%s%N) - t0) / 1000000))
  lg_wait || true
  load_acks rs-send rs-stream
  settle 30 || true
  local failed_ops
  failed_ops=$(($(redis_failed_ops "$a") + $(redis_failed_ops "$b")))
  record redis-stop '.lg.ok > 0 and .db.streaming_left == 0 and .db.acked_messages_without_finished_reply == 0
      and ([.lg.statuses | to_entries[] | select(.key | startswith("5"))] | length) == 0
      and .extra.before == ["ok", "ok"] and .extra.ready_status_during_outage == "200"
      and .extra.redis_check_during_outage == "unavailable" and .extra.recovered
      and .extra.failed_redis_ops > 0' \
    "$(lg_totals rs-send rs-stream)" "$(check_db rs-send rs-stream)" \
    "$(jq -n --arg ba "$before_a" --arg bb "$before_b" --arg ds "$down_status" --arg dc "$down_check" \
        --argjson r "$recovered" --argjson ms "$secs" --argjson f "$failed_ops" \
        '{before: [$ba, $bb], ready_status_during_outage: $ds, redis_check_during_outage: $dc,
          recovered: $r, ms_to_recover: $ms, failed_redis_ops: $f}')"
  stop_all_services "$pa" "$pb" "$REDIS_PID"
}

# --- The generating replica killed mid-reply ------------------------------------------
sc_replica_kill() {
  local rport prefix
  rport=$(free_port)
  prefix="faults-$$:"
  redis_start redis-kill "$rport"
  # Slow replies (200 tokens at 10/s): the kill lands mid-reply.
  fake fake-kill --ttft-ms 20 --tokens-per-sec 10 --reply-tokens 200
  local lease=5
  service svc-kill-a "$FAKE_PORT" "REDIS_URL=redis://127.0.0.1:$rport" "REDIS_KEY_PREFIX=$prefix" \
    "REDIS_LEASE_SECS=$lease"
  local a="http://127.0.0.1:$SVC_PORT" pa=$SVC_PID
  # B answers quickly (its own fake), so its load finishes within the load's bounds.
  fake fake-kill-b --ttft-ms 5 --tokens-per-sec 0
  service svc-kill-b "$FAKE_PORT" "REDIS_URL=redis://127.0.0.1:$rport" "REDIS_KEY_PREFIX=$prefix" \
    "REDIS_LEASE_SECS=$lease"
  local b="http://127.0.0.1:$SVC_PORT" pb=$SVC_PID
  local token chat
  token=$(jwt rk-user)
  chat=$(curl -s --max-time 10 -X POST "$a/api/v1/chats" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"title":"replica-kill"}' | jq -r .id)
  [ -n "$chat" ] && [ "$chat" != null ] || die "replica-kill: cannot create a chat"
  # B keeps serving other users meanwhile (and gives the common checks their acks).
  lg_bg rk-send --target "$b" --scenario send --concurrency 2 --duration-secs 20 --users rk-other
  curl -s -N --max-time 60 -X POST "$a/api/v1/messages?chatId=$chat" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
    -d '{"content":"tell me a long story"}' >"$WORK/rk-stream.txt" 2>/dev/null &
  local curl_pid=$! i
  for ((i = 0; i < 200; i++)); do
    [ "$(grep -c '^event: delta' "$WORK/rk-stream.txt" 2>/dev/null)" -ge 3 ] && break
    sleep 0.1
  done
  log "replica-kill: SIGKILL to the generating replica $pa"
  kill -KILL "$pa"
  local t0 status="" secs
  t0=$(date +%s%N)
  for ((i = 0; i < 450; i++)); do
    status=$(psql_db -At -c "SELECT status FROM messages WHERE chat_id = '$chat' AND role = 'assistant' ORDER BY seq DESC LIMIT 1")
    [ "$status" = failed ] && break
    sleep 0.1
  done
  secs=$((($(date +%s%N) - t0) / 1000000))
  local partial send_status
  partial=$(psql_db -At -c "SELECT length(content) FROM messages WHERE chat_id = '$chat' AND role = 'assistant' ORDER BY seq DESC LIMIT 1")
  # Streamed, so the status (201) arrives with the `message` event, long before the reply ends.
  send_status=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -X POST "$b/api/v1/messages?chatId=$chat" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
    -d '{"content":"are you there?"}' || true)
  kill "$curl_pid" 2>/dev/null || true
  lg_wait || true
  record replica-kill '.extra.reply_status == "failed" and .extra.ms_to_failed <= 30000
      and .extra.partial_chars > 0 and .extra.send_after == "201"' \
    "$(lg_totals rk-send)" "$(check_db rk-send)" \
    "$(jq -n --arg st "$status" --argjson ms "$secs" --arg p "${partial:-0}" --arg s "$send_status" \
        --argjson lease "$lease" \
        '{reply_status: $st, ms_to_failed: $ms, partial_chars: ($p | tonumber? // 0), send_after: $s,
          lease_secs: $lease}')"
  stop_all_services "$pb" "$REDIS_PID"
}
