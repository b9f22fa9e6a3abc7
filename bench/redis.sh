# Live replies on Redis in the benchmark (sourced by bench/run.sh after its own runs;
# uses its helpers and variables). The same streamed sends through a service whose
# live state goes to a Redis server of this run's own (started on a free port with no
# persistence, its files under $WORK, stopped at the end; never the machine's 6379),
# under a key prefix of the run's own, compared with the runs without it; and the open
# streams again with Redis. Raw results in $RAW (redis-stream-c<N>.json,
# redis-hold.json, redis-memory.json), which `loadgen report` renders (report_redis.rs).

# Waits (at most $1 s) until the outbox holds no event left to publish, so that a run
# does not share the cores with a relay still working through an earlier run's events.
wait_outbox_drained() {
  local i left
  for ((i = 0; i < $1 * 2; i++)); do
    left=$(psql_db -At -c "SELECT count(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL")
    [ "$left" = 0 ] && return 0
    sleep 0.5
  done
  log "the outbox still holds $left events to publish after $1 s"
}

bench_redis() {
  local prefix="chat-bench-$$:"
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "redis-server is not installed: no Redis comparison (apt-get install redis-server)"
    return 0
  fi
  local rport rpid i rp rsvc c
  rport=$(free_port)
  mkdir -p "$WORK/redis"
  start redis-bench redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/redis"
  rpid=$LAST_PID
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  rp=$(free_port)
  svc_env "$rp" "$LLM_PORT"
  start chat-service-redis env "${SVC_ENV[@]}" "REDIS_URL=redis://127.0.0.1:$rport" \
    "REDIS_KEY_PREFIX=$prefix" "$BIN/chat-service"
  rsvc=$LAST_PID
  wait_ready "http://127.0.0.1:$rp/readyz" || die "chat-service (redis) did not become ready"
  wait_outbox_drained 120
  for c in 1 64; do
    log "stream c=$c: service with Redis"
    timeout $((DUR * 3 + 180)) "$LG" run --target "http://127.0.0.1:$rp" --scenario stream \
      --concurrency "$c" --duration-secs "$DUR" --warmup-secs "$WARM" --rss-pid "$rsvc" \
      --timeout-ms 30000 --users rsender --chats-per-worker 8 --out "$RAW/redis-stream-c$c.json" \
      >/dev/null || log "loadgen stream (redis) c=$c failed"
  done
  stop "$rsvc" 20
  local slow_port slow hp hsvc
  slow_port=$(free_port)
  start fake-llm-slow-redis "$BIN/fake-llm" --addr "127.0.0.1:$slow_port" --ttft-ms 600000
  slow=$LAST_PID
  wait_ready "http://127.0.0.1:$slow_port/health" || die "slow fake-llm (redis) did not start"
  hp=$(free_port)
  svc_env "$hp" "$slow_port"
  start chat-service-hold-redis env "${SVC_ENV[@]}" "REDIS_URL=redis://127.0.0.1:$rport" \
    "REDIS_KEY_PREFIX=$prefix" \
    LLM_FIRST_TOKEN_TIMEOUT_MS=900000 LLM_IDLE_TIMEOUT_MS=900000 LLM_TOTAL_TIMEOUT_MS=900000 \
    LLM_STALE_REPLY_SECS=1000 "$BIN/chat-service"
  hsvc=$LAST_PID
  wait_ready "http://127.0.0.1:$hp/readyz" || die "chat-service (hold, redis) did not become ready"
  log "holding $HOLD streams with Redis"
  timeout 600 "$LG" hold --target "http://127.0.0.1:$hp" --streams "$HOLD" --hold-secs "$HOLD_SECS" \
    --open-concurrency 64 --open-timeout-secs 300 --rss-pid "$hsvc" --out "$RAW/redis-hold.json" \
    >/dev/null || log "hold (redis) failed"
  jq --argjson t "$HOLD_TARGET" --argjson n "$NOFILE" '. + {target_streams: $t, fd_limit: $n}' \
    "$RAW/redis-hold.json" >"$RAW/redis-hold.tmp" 2>/dev/null && mv "$RAW/redis-hold.tmp" "$RAW/redis-hold.json"
  # Redis's own memory with the streams open, and the keys the run left.
  jq -n --argjson used "$(redis-cli -p "$rport" info memory |
    awk -F: '/^used_memory:/ {gsub("\r", "", $2); print $2}')" --argjson keys "$(redis-cli -p "$rport" dbsize)" '{used_memory_bytes: $used, keys: $keys}' \
    >"$RAW/redis-memory.json" || log "no Redis memory figure"
  stop "$slow" 2
  stop "$hsvc" 15
  stop "$rpid" 5
  log "Redis: $(jq -c . "$RAW/redis-memory.json" 2>/dev/null)"
}
