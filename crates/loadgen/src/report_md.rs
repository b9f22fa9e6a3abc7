//! Renders the gathered bench results as `BENCHMARKS.md`: the DESIGN.md §6 verdicts,
//! per-scenario tables with the database ceiling beside the service, streaming
//! overhead, memory and start-up, the method, and the hand-written analysis.

use crate::report::num;
use crate::{report_redis, report_tree};
use serde_json::Value;
use std::fmt::Write;

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

fn verdict(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "✅ pass",
        Some(false) => "❌ fail",
        None => "– not measured",
    }
}

fn errors(svc: &Value) -> u64 {
    let statuses: u64 = svc["statuses"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    statuses + svc["timeouts"].as_u64().unwrap_or(0) + svc["transport_errors"].as_u64().unwrap_or(0)
}

fn header(out: &mut String, r: &Value) {
    let m = &r["meta"];
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Measured by `just bench` (`bench/run.sh`) on {} at git `{}`{}: {} cores ({}), {} MiB RAM, \
         Linux {}; PostgreSQL {} on the same machine ({}); `fake-llm` with zero latency. \
         {} chats seeded in bulk; each measured run lasts {} s after {} s of warm-up; service \
         database pool {}. The whole run took {} s. Raw numbers: `bench/results.json`.\n",
        s(&m["date"]),
        s(&m["git"]),
        if m["dirty"] == "yes" { " (with uncommitted changes)" } else { "" },
        s(&m["cpus"]),
        s(&m["cpu"]),
        s(&m["mem_mib"]),
        s(&m["kernel"]),
        s(&m["postgres"]),
        s(&m["postgres_settings"]),
        s(&m["chats"]),
        s(&m["duration_s"]),
        s(&m["warmup_s"]),
        s(&m["db_pool_size"]),
        s(&m["run_s"]),
    );
    if m["mode"] == "quick" {
        let _ = writeln!(out, "> **Quick mode**: a short smoke run with fewer chats and shorter runs; not the figures of record.\n");
    }
}

fn levels(out: &mut String, r: &Value) {
    let _ = writeln!(out, "## Service levels (DESIGN.md §6)\n");
    let _ = writeln!(
        out,
        "| level | target | measured | verdict | note |\n| --- | --- | --- | --- | --- |"
    );
    for l in r["levels"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            s(&l["level"]),
            s(&l["target"]),
            s(&l["measured"]),
            verdict(&l["pass"]),
            l["note"].as_str().unwrap_or("")
        );
    }
    out.push('\n');
}

fn scenarios(out: &mut String, r: &Value) {
    let _ = writeln!(out, "## Throughput and latency per scenario\n");
    let _ = writeln!(
        out,
        "*Service*: successful requests per second and whole-request latency (HTTP/1.1 keep-alive, \
         one request in flight per client; a stream counts until its `reply` event). *Database \
         ceiling*: `pgbench` running the statements the service runs for that request \
         (`bench/pgbench/*.sql`) with as many clients and the same protocol (prepared \
         statements, or unnamed ones planned per execution for list, search and create, \
         as diesel sends them). Streams share the send ceiling. Errors are non-2xx answers, timeouts and transport failures.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | c | service req/s | p50 ms | p90 ms | p99 ms | errors | pgbench tps | pgbench p50 ms | pgbench p99 ms | service / DB |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for x in r["scenarios"].as_array().into_iter().flatten() {
        let svc = &x["service"];
        let db = &x["db"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s(&x["scenario"]),
            s(&x["concurrency"]),
            f(num(svc, "/rps"), 0),
            f(num(svc, "/latency_ms/p50"), 2),
            f(num(svc, "/latency_ms/p90"), 2),
            f(num(svc, "/latency_ms/p99"), 2),
            errors(svc),
            f(num(db, "/tps"), 0),
            f(num(db, "/latency_ms/p50"), 2),
            f(num(db, "/latency_ms/p99"), 2),
            f(x["ratio"].as_f64(), 2),
        );
    }
    out.push('\n');
}

fn send_ceilings(out: &mut String, r: &Value) {
    let _ = writeln!(out, "## Sends against the database's floor\n");
    let _ = writeln!(
        out,
        "The send level (DESIGN.md §6) is judged against `pgbench` running the **least SQL a \
         durable send needs** (`bench/pgbench/send_least.sql`, prepared: two transactions, each \
         one chat-row UPDATE, one message write and one outbox INSERT), at the same \
         concurrency. The same-SQL ceiling (`send.sql`: the statements the service issues \
         today) is shown beside it: the gap between the two is SQL the service could drop.\n"
    );
    let _ = writeln!(
        out,
        "| c | service sends/s | least-SQL tps | service / least | same-SQL tps | service / same |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for x in r["scenarios"].as_array().into_iter().flatten() {
        if x["scenario"] != "send" {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            s(&x["concurrency"]),
            f(num(&x["service"], "/rps"), 0),
            f(num(&x["least"], "/tps"), 0),
            f(x["ratio_least"].as_f64(), 2),
            f(num(&x["db"], "/tps"), 0),
            f(x["ratio"].as_f64(), 2),
        );
    }
    out.push('\n');
}

fn ttft(out: &mut String, r: &Value) {
    let _ = writeln!(out, "## Streaming: time to first token\n");
    let _ = writeln!(
        out,
        "Time from sending the request to the first `delta` event through the service, and to \
         the first content chunk straight from `fake-llm` (same prompt, same concurrency). The \
         service's part splits into storing the turn (request → `message` event: owner check, \
         the turn's transaction, the history read) and the provider leg (`message` → first \
         `delta`).\n"
    );
    let _ = writeln!(
        out,
        "| provider's first token | c | via service p50 / p99 ms | fake-llm alone p50 / p99 ms | added p50 / p99 ms | request → `message` p50 / p99 ms | `message` → first `delta` p50 / p99 ms |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for t in r["ttft"].as_array().into_iter().flatten() {
        let p = |a: &str, b: &str| format!("{} / {}", f(t[a].as_f64(), 2), f(t[b].as_f64(), 2));
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {} | {} | {} | {} |",
            s(&t["provider_ttft_ms"]),
            s(&t["concurrency"]),
            p("service_p50", "service_p99"),
            p("direct_p50", "direct_p99"),
            p("overhead_p50", "overhead_p99"),
            p("message_event_p50", "message_event_p99"),
            p("message_to_delta_p50", "message_to_delta_p99"),
        );
    }
    out.push('\n');
}

fn memory(out: &mut String, r: &Value) {
    let _ = writeln!(out, "## Memory and start-up\n");
    let st = &r["startup"];
    let runs = st["runs"].as_array().map_or(0, Vec::len);
    let mib = |k: Option<f64>| f(k.map(|k| k / 1024.0), 1);
    let _ = writeln!(
        out,
        "- **Start to ready** (exec to the first `/readyz` 200, PostgreSQL-backed, migrations \
         already applied): p50 {} ms, max {} ms over {runs} starts.",
        f(num(st, "/ready_ms/p50"), 1),
        f(num(st, "/ready_ms/max"), 1),
    );
    let _ = writeln!(
        out,
        "- **Idle resident memory**: {} MiB (median, 2 s after ready); {} MiB after all the load \
         runs above (peak during them {} MiB).",
        mib(num(st, "/rss_idle_kib_median")),
        mib(num(&r["idle_after_load"], "/rss_kib")),
        mib(num(&r["idle_after_load"], "/hwm_kib")),
    );
    let h = &r["hold"];
    if h.is_object() {
        let _ = writeln!(
            out,
            "- **Open streams**: {} of {} opened in {} s (open latency p99 {} ms), held {}; {} \
             ended early, {} failed. Resident memory {} MiB before, {} MiB with them open (max {} \
             MiB): {} KiB per stream; the service held {} file descriptors. Target {} streams, \
             fd limit {} (each stream costs the service two descriptors: the client's \
             connection and the provider's).",
            s(&h["opened"]),
            s(&h["streams"]),
            f(num(h, "/open_s"), 1),
            f(num(h, "/open_latency_ms/p99"), 0),
            s(&h["held_at_end"]),
            s(&h["ended_early"]),
            s(&h["failed"]),
            mib(num(h, "/rss/after_setup_kib")),
            mib(num(h, "/rss/open_kib")),
            mib(num(h, "/rss/max_kib")),
            f(num(h, "/rss/per_stream_kib"), 1),
            s(&h["fds_open"]),
            s(&h["target_streams"]),
            s(&h["fd_limit"]),
        );
    }
    out.push('\n');
}

fn method(out: &mut String) {
    let _ = writeln!(
        out,
        "## Method\n\n\
         - `bench/run.sh` builds release binaries, creates a throw-away database, applies the \
           migrations (`chat-service migrate`) and seeds it with `bench/seed.sql` \
           (`generate_series`): 10% of the chats belong to one heavy user, 20 users own chats \
           of 40 messages, the rest spread over ~9,000 users. List and search run as the heavy \
           user; search mixes a common term (`lisbon`, 10% of titles), a rare one (`zzqx`, 1% \
           of the heavy user's titles: the trigram-index path) and one that matches nothing.\n\
         - `loadgen` (crates/loadgen) runs a fixed number of clients for a fixed time, \
           HDR histograms, every request bounded by a timeout; send and stream clients each \
           use their own chats (a chat takes one turn at a time).\n\
         - `pgbench -c N -j 2 -T …` runs the same statements (`-M prepared`, or `-M extended` \
           where the service's statements are unnamed); its per-transaction log gives the \
           percentiles. Service and pgbench run one after the other, never \
           together, on the same 2 cores as PostgreSQL, `fake-llm` and the load generator.\n\
         - Streams memory: a second `fake-llm` answers headers and then waits 10 minutes \
           before its first token, so every stream stays open and idle; `loadgen hold` opens \
           them 64 at a time and samples the service's `VmRSS` from `/proc`.\n\
         - Logging at `warn` (JSON) during the runs; events go through the outbox and its \
           relay to the log publisher (no Kafka).\n"
    );
}

/// The Markdown report for `r`, with `analysis` appended.
pub fn render(r: &Value, analysis: Option<&str>) -> String {
    let mut out = String::new();
    header(&mut out, r);
    levels(&mut out, r);
    scenarios(&mut out, r);
    send_ceilings(&mut out, r);
    report_tree::render(&mut out, r);
    ttft(&mut out, r);
    memory(&mut out, r);
    report_redis::render(&mut out, r);
    method(&mut out);
    if let Some(a) = analysis {
        out.push_str(a.trim_end());
        out.push('\n');
    }
    out
}
