# Live replies on Redis in the benchmark (sourced by bench/run.sh after its own runs;
# uses its helpers and variables). The same streamed sends through a service whose
# live state goes to a Redis of this run's own (never the machine's 6379), compared
# with the runs without it; and the open streams again with Redis. Writes
# $WORK/redis/summary.json; bench_redis_report appends it to the Markdown and JSON.

bench_redis() {
  REDIS_RAW="$WORK/redis"
  mkdir -p "$REDIS_RAW"
  if ! command -v redis-server >/dev/null; then
    log "redis-server is not installed: no Redis comparison (apt-get install redis-server)"
    return 0
  fi
  local rport rpid i rp rsvc c
  rport=$(free_port)
  start redis-bench redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no
  rpid=$LAST_PID
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  rp=$(free_port)
  svc_env "$rp" "$LLM_PORT"
  start chat-service-redis env "${SVC_ENV[@]}" "REDIS_URL=redis://127.0.0.1:$rport" "$BIN/chat-service"
  rsvc=$LAST_PID
  wait_ready "http://127.0.0.1:$rp/readyz" || die "chat-service (redis) did not become ready"
  for c in 1 64; do
    log "stream c=$c: service with Redis"
    timeout $((DUR * 3 + 180)) "$LG" run --target "http://127.0.0.1:$rp" --scenario stream \
      --concurrency "$c" --duration-secs "$DUR" --warmup-secs "$WARM" --rss-pid "$rsvc" \
      --timeout-ms 30000 --users rsender --chats-per-worker 8 --out "$REDIS_RAW/stream-c$c.json" \
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
    LLM_FIRST_TOKEN_TIMEOUT_MS=900000 LLM_IDLE_TIMEOUT_MS=900000 LLM_TOTAL_TIMEOUT_MS=900000 \
    LLM_STALE_REPLY_SECS=1000 "$BIN/chat-service"
  hsvc=$LAST_PID
  wait_ready "http://127.0.0.1:$hp/readyz" || die "chat-service (hold, redis) did not become ready"
  log "holding $HOLD streams with Redis"
  timeout 600 "$LG" hold --target "http://127.0.0.1:$hp" --streams "$HOLD" --hold-secs "$HOLD_SECS" \
    --open-concurrency 64 --open-timeout-secs 300 --rss-pid "$hsvc" --out "$REDIS_RAW/hold.json" \
    >/dev/null || log "hold (redis) failed"
  redis-cli -p "$rport" info memory | awk -F: '/^used_memory:/ {gsub("\r", "", $2); print "{\"redis_used_memory_bytes\": " $2 "}"}' \
    >"$REDIS_RAW/redis-memory.json"
  stop "$slow" 2
  stop "$hsvc" 15
  stop "$rpid" 5
  local rows=() base with
  for c in 1 64; do
    base="$RAW/svc-stream-c$c.json"
    with="$REDIS_RAW/stream-c$c.json"
    [ -s "$base" ] && [ -s "$with" ] || continue
    rows+=("$(jq -n --argjson c "$c" --slurpfile b "$base" --slurpfile w "$with" '
      {concurrency: $c,
       rps_without: $b[0].rps, rps_with: $w[0].rps,
       ttft_p50_without_ms: $b[0].ttft_ms.p50, ttft_p50_with_ms: $w[0].ttft_ms.p50,
       ttft_p99_without_ms: $b[0].ttft_ms.p99, ttft_p99_with_ms: $w[0].ttft_ms.p99,
       added_ttft_p50_ms: (($w[0].ttft_ms.p50 // 0) - ($b[0].ttft_ms.p50 // 0)),
       added_ttft_p99_ms: (($w[0].ttft_ms.p99 // 0) - ($b[0].ttft_ms.p99 // 0))}')")
  done
  printf '%s\n' "${rows[@]}" | jq -s --slurpfile h <(cat "$REDIS_RAW/hold.json" 2>/dev/null || echo '{}') \
    --slurpfile m <(cat "$REDIS_RAW/redis-memory.json" 2>/dev/null || echo '{}') \
    '{stream: ., hold: $h[0], redis: $m[0]}' >"$REDIS_RAW/summary.json"
}

bench_redis_report() {
  local sum="$WORK/redis/summary.json"
  [ -s "$sum" ] || return 0
  jq --slurpfile r "$sum" '. + {redis: $r[0]}' "$OUT_JSON" >"$OUT_JSON.tmp" && mv "$OUT_JSON.tmp" "$OUT_JSON"
  jq -r '
    def n(d): if . == null then "n/a" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
    "## Live replies on Redis\n",
    "Streamed sends through a service with `REDIS_URL` set (text coalesced into the reply buffer, lease, cancel watch) against the same runs without it (in-process live state).\n",
    "| c | sends/s without | sends/s with | first token p50 without / with ms | added p50 ms | first token p99 without / with ms | added p99 ms |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    (.stream[] | "| \(.concurrency) | \(.rps_without | n(1)) | \(.rps_with | n(1)) | \(.ttft_p50_without_ms | n(2)) / \(.ttft_p50_with_ms | n(2)) | \(.added_ttft_p50_ms | n(2)) | \(.ttft_p99_without_ms | n(2)) / \(.ttft_p99_with_ms | n(2)) | \(.added_ttft_p99_ms | n(2)) |"),
    "",
    (if .hold.opened then "- **Open streams with Redis**: \(.hold.opened) of \(.hold.streams) opened; resident memory \((.hold.rss.open_kib // 0) / 1024 | n(1)) MiB with them open (max \((.hold.rss.max_kib // 0) / 1024 | n(1)) MiB), \(.hold.rss.per_stream_kib | n(1)) KiB per stream; Redis used \((.redis.redis_used_memory_bytes // 0) / 1048576 | n(1)) MiB.\n" else empty end)
  ' "$sum" >>"$OUT_MD"
}
