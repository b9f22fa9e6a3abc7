//! Live replies on Redis in the report (bench/redis.sh): the streamed sends again
//! through a service with `REDIS_URL` set (`redis-stream-c<N>.json`) against the runs
//! without it (`svc-stream-c<N>.json`), and the open streams again with Redis
//! (`redis-hold.json`, with Redis's own memory in `redis-memory.json`).

use crate::report::{hold_level, num, r3, read};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;

/// The concurrencies bench/redis.sh streams at.
const CONCURRENCY: [u64; 2] = [1, 64];

/// Gathers the Redis results of `dir`: `{stream: [...], hold, memory}`, or null when
/// the run has none (no `redis-server` on the machine).
pub fn gather(dir: &Path) -> Value {
    let stream: Vec<Value> = CONCURRENCY
        .iter()
        .filter_map(|&c| {
            let with = read(dir, &format!("redis-stream-c{c}.json"))?;
            let without = read(dir, &format!("svc-stream-c{c}.json")).unwrap_or(Value::Null);
            let added = |p: &str| match (num(&with, p), num(&without, p)) {
                (Some(w), Some(b)) => Some(r3(w - b)),
                _ => None,
            };
            Some(json!({
                "concurrency": c,
                "rps_without": num(&without, "/rps"), "rps_with": num(&with, "/rps"),
                "rps_ratio": match (num(&with, "/rps"), num(&without, "/rps")) {
                    (Some(w), Some(b)) if b > 0.0 => Some(r3(w / b)),
                    _ => None,
                },
                "ttft_p50_without_ms": num(&without, "/ttft_ms/p50"),
                "ttft_p50_with_ms": num(&with, "/ttft_ms/p50"),
                "ttft_p99_without_ms": num(&without, "/ttft_ms/p99"),
                "ttft_p99_with_ms": num(&with, "/ttft_ms/p99"),
                "added_ttft_p50_ms": added("/ttft_ms/p50"),
                "added_ttft_p99_ms": added("/ttft_ms/p99"),
                "errors_with": with["statuses"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>())
                    + with["timeouts"].as_u64().unwrap_or(0)
                    + with["transport_errors"].as_u64().unwrap_or(0),
            }))
        })
        .collect();
    let hold = read(dir, "redis-hold.json");
    if stream.is_empty() && hold.is_none() {
        return Value::Null;
    }
    json!({"stream": stream, "hold": hold, "memory": read(dir, "redis-memory.json")})
}

/// The open-streams level again, with the live state on Redis.
pub fn levels(r: &Value) -> Vec<Value> {
    let mut l = hold_level(
        "resident memory with 10000 open streams, live state on Redis",
        &r["redis"]["hold"],
    );
    if r["redis"].is_null() {
        l["note"] = json!("no Redis run (redis-server not installed)");
    }
    vec![l]
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The Redis section of BENCHMARKS.md (nothing when the run has no Redis results).
pub fn render(out: &mut String, r: &Value) {
    let x = &r["redis"];
    if !x.is_object() {
        return;
    }
    let _ = writeln!(out, "## Live replies on Redis\n");
    let _ = writeln!(
        out,
        "Streamed sends through a service with `REDIS_URL` set (a Redis server of the run's \
         own, on its own port: the reply's text coalesced into its Redis buffer, the \
         generating process's lease, the cancel watch) against the same runs without it \
         (in-process live state), one after the other on the same database. Added time to \
         first token is with Redis minus without.\n"
    );
    let _ = writeln!(
        out,
        "| c | sends/s without | sends/s with | with / without | first token p50 without / with ms | added p50 ms | first token p99 without / with ms | added p99 ms | errors with |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for s in x["stream"].as_array().into_iter().flatten() {
        let v = |k: &str, d: usize| f(s[k].as_f64(), d);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} | {} / {} | {} | {} |",
            s["concurrency"],
            v("rps_without", 1),
            v("rps_with", 1),
            v("rps_ratio", 2),
            v("ttft_p50_without_ms", 2),
            v("ttft_p50_with_ms", 2),
            v("added_ttft_p50_ms", 2),
            v("ttft_p99_without_ms", 2),
            v("ttft_p99_with_ms", 2),
            v("added_ttft_p99_ms", 2),
            s["errors_with"],
        );
    }
    out.push('\n');
    let h = &x["hold"];
    if h.is_object() {
        let mib = |k: Option<f64>| f(k.map(|k| k / 1024.0), 1);
        let _ =
            writeln!(
            out,
            "- **Open streams with Redis**: {} of {} opened; resident memory {} MiB before, {} \
             MiB with them open (max {} MiB): {} KiB per stream. Redis itself: {} MiB used \
             ({} keys of the run) with them open.\n",
            h["opened"],
            h["streams"],
            mib(num(h, "/rss/after_setup_kib")),
            mib(num(h, "/rss/open_kib")),
            mib(num(h, "/rss/max_kib")),
            f(num(h, "/rss/per_stream_kib"), 1),
            f(num(&x["memory"], "/used_memory_bytes").map(|b| b / 1_048_576.0), 1),
            x["memory"]["keys"].as_u64().map_or("?".into(), |k| k.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::assemble;

    fn write(dir: &Path, name: &str, v: Value) {
        std::fs::write(dir.join(name), v.to_string()).unwrap();
    }

    #[test]
    fn redis_against_in_process_and_the_streams_level() {
        let dir = std::env::temp_dir().join(format!("loadgen-report-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "meta.json",
            json!({"concurrency": [1, 64], "chats": 1_000_000}),
        );
        write(
            &dir,
            "svc-stream-c1.json",
            json!({"rps": 200.0, "ttft_ms": {"p50": 2.0, "p99": 4.0}}),
        );
        write(
            &dir,
            "redis-stream-c1.json",
            json!({"rps": 180.0, "ttft_ms": {"p50": 2.25, "p99": 5.0}, "statuses": {"503": 2}}),
        );
        write(
            &dir,
            "redis-stream-c64.json",
            json!({"rps": 400.0, "ttft_ms": {"p50": 90.0}}),
        );
        write(
            &dir,
            "redis-hold.json",
            json!({"streams": 10000, "opened": 10000, "rss": {"after_setup_kib": 20480, "open_kib": 409600, "max_kib": 419840, "per_stream_kib": 39.0}}),
        );
        write(
            &dir,
            "redis-memory.json",
            json!({"used_memory_bytes": 3_145_728, "keys": 10001}),
        );
        let r = assemble(&dir);
        let _ = std::fs::remove_dir_all(&dir);

        let s = r["redis"]["stream"].as_array().unwrap();
        assert_eq!(s[0]["added_ttft_p50_ms"], json!(0.25));
        assert_eq!(s[0]["rps_ratio"], json!(0.9));
        assert_eq!(s[0]["errors_with"], json!(2));
        assert_eq!(
            s[1]["rps_without"],
            Value::Null,
            "no run without Redis at c=64"
        );
        let level = r["levels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| {
                l["level"]
                    .as_str()
                    .unwrap()
                    .ends_with("live state on Redis")
            })
            .unwrap()
            .clone();
        assert_eq!(level["pass"], json!(true)); // 410 MiB with 10,000 streams

        let md = crate::report_md::render(&r, Some("## Analysis\n"));
        let section = md.find("## Live replies on Redis").expect(&md);
        assert!(
            section < md.find("## Analysis").unwrap(),
            "generated, before the analysis"
        );
        assert!(
            md.contains(
                "| 1 | 200.0 | 180.0 | 0.90 | 2.00 / 2.25 | 0.25 | 4.00 / 5.00 | 1.00 | 2 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 64 | – | 400.0 | – | – / 90.00 | – |"),
            "{md}"
        );
        assert!(md.contains("10000 of 10000 opened"), "{md}");
        assert!(
            md.contains("Redis itself: 3.0 MiB used (10001 keys of the run)"),
            "{md}"
        );
    }

    #[test]
    fn a_run_without_redis_says_so() {
        let dir =
            std::env::temp_dir().join(format!("loadgen-report-noredis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "meta.json", json!({"concurrency": [1]}));
        let r = assemble(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(r["redis"], Value::Null);
        let md = crate::report_md::render(&r, None);
        assert!(!md.contains("## Live replies on Redis"));
        assert!(
            md.contains("no Redis run (redis-server not installed)"),
            "{md}"
        );
    }
}
