//! The deep chat in the report (bench/seed_tree.sql: a 10,000-message branch through
//! 300 regenerated replies): a branch page at every concurrency and a send in the chat
//! at concurrency 1, each beside `pgbench` running the service's statement
//! (`tree-svc-branch-page-c<N>.json` against `tree-db-branch-page-c<N>.json`,
//! `tree-svc-send-c1.json` against `tree-db-branch-history-c1.json`, its prompt-history
//! read); the branch-page level of DESIGN.md §6.

use crate::report::{num, read};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;

/// Gathers the deep-chat results of `dir`: `{page: [...], send: {...}}`, or null when
/// the run has none.
pub fn gather(dir: &Path, concs: &[u64]) -> Value {
    let page: Vec<Value> = concs
        .iter()
        .filter_map(|&c| {
            let svc = read(dir, &format!("tree-svc-branch-page-c{c}.json"))?;
            let db = read(dir, &format!("tree-db-branch-page-c{c}.json"));
            Some(json!({"concurrency": c, "service": svc, "db": db}))
        })
        .collect();
    let send = read(dir, "tree-svc-send-c1.json").map(|svc| {
        json!({
            "concurrency": 1, "service": svc,
            "history_db": read(dir, "tree-db-branch-history-c1.json"),
            // A send in a fresh chat, for comparison (the main send scenario).
            "flat_service": read(dir, "svc-send-c1.json"),
        })
    });
    if page.is_empty() && send.is_none() {
        return Value::Null;
    }
    json!({"page": page, "send": send})
}

/// The branch-page level: p99 < 10 ms at concurrency 1 and 16, as the other reads.
pub fn levels(r: &Value) -> Vec<Value> {
    let chats = num(&r["meta"], "/chats").unwrap_or(0.0);
    let note = if chats < 1_000_000.0 {
        "quick run: fewer chats than the level's 1,000,000; the deep chat's branch passes through 300 regenerated replies; random cursor"
    } else {
        "the deep chat's branch passes through 300 regenerated replies (301 lines); random cursor"
    };
    let mut out = Vec::new();
    for c in [1u64, 16] {
        let row = r["tree"]["page"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["concurrency"] == c));
        let p99 = row.and_then(|x| num(x, "/service/latency_ms/p99"));
        out.push(json!({
            "level": format!("branch page p99 with a 10,000-message branch, c={c}"),
            "target": "< 10 ms",
            "measured": p99.map_or("n/a".into(), |p| format!("{p:.2} ms")),
            "pass": p99.map(|p| p < 10.0),
            "note": note,
        }));
    }
    out
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn row(out: &mut String, what: &str, c: &Value, svc: &Value, db: &Value) {
    let ratio = match (num(svc, "/rps"), num(db, "/tps")) {
        (Some(r), Some(t)) if t > 0.0 => Some(r / t),
        _ => None,
    };
    let _ = writeln!(
        out,
        "| {what} | {c} | {} | {} | {} | {} | {} | {} | {} |",
        f(num(svc, "/rps"), 0),
        f(num(svc, "/latency_ms/p50"), 2),
        f(num(svc, "/latency_ms/p99"), 2),
        f(num(db, "/tps"), 0),
        f(num(db, "/latency_ms/p50"), 2),
        f(num(db, "/latency_ms/p99"), 2),
        f(ratio, 2),
    );
}

/// The deep-chat section of BENCHMARKS.md (nothing when the run has no deep chat).
pub fn render(out: &mut String, r: &Value) {
    let t = &r["tree"];
    if !t.is_object() {
        return;
    }
    let _ = writeln!(out, "## The deep chat: a branch page and a send\n");
    let _ = writeln!(
        out,
        "One chat of user `deep` (`bench/seed_tree.sql`): its active branch holds 10,000 \
         messages and passes through 300 regenerated replies (each with a 3-message side \
         branch), so it is 301 lines of the tree layout. *Branch page*: `GET /messages?chatId` \
         of that chat, 20 messages after a random cursor (`--cursor-below 10880`), against \
         `pgbench` running the same statement (`bench/pgbench/branch_page.sql`, prepared: \
         `repo::branches::ACTIVE_PAGE_SQL`, the page with the owner check in it). *Send*: `POST /messages` (JSON, answered with the \
         stored reply) at the branch's leaf (c=1: a chat takes one turn at a time), against `pgbench` \
         running its prompt-history read alone (`branch_history.sql`, 200 messages); the \
         send in a fresh chat (the `send` scenario, c=1) is shown for comparison.\n"
    );
    let _ = writeln!(
        out,
        "| read | c | service req/s | p50 ms | p99 ms | pgbench tps | pgbench p50 ms | pgbench p99 ms | service / DB |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for x in t["page"].as_array().into_iter().flatten() {
        row(
            out,
            "branch page",
            &x["concurrency"],
            &x["service"],
            &x["db"],
        );
    }
    let s = &t["send"];
    if s.is_object() {
        row(
            out,
            "send in the deep chat (ceiling: its history read)",
            &json!(1),
            &s["service"],
            &s["history_db"],
        );
        if s["flat_service"].is_object() {
            row(
                out,
                "send in a fresh chat",
                &json!(1),
                &s["flat_service"],
                &Value::Null,
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::assemble;

    fn write(dir: &Path, name: &str, v: Value) {
        std::fs::write(dir.join(name), v.to_string()).unwrap();
    }

    #[test]
    fn deep_chat_rows_levels_and_section() {
        let dir = std::env::temp_dir().join(format!("loadgen-report-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "meta.json",
            json!({"concurrency": [1, 16, 64], "chats": 1_000_000}),
        );
        write(
            &dir,
            "tree-svc-branch-page-c1.json",
            json!({"rps": 400.0, "latency_ms": {"p50": 2.0, "p99": 4.5}}),
        );
        write(
            &dir,
            "tree-db-branch-page-c1.json",
            json!({"tps": 500.0, "latency_ms": {"p50": 1.5, "p99": 3.0}}),
        );
        write(
            &dir,
            "tree-svc-branch-page-c16.json",
            json!({"rps": 900.0, "latency_ms": {"p50": 12.0, "p99": 25.0}}),
        );
        write(
            &dir,
            "tree-db-branch-page-c16.json",
            json!({"tps": 1200.0, "latency_ms": {"p99": 18.0}}),
        );
        write(
            &dir,
            "tree-svc-branch-page-c64.json",
            json!({"rps": 950.0, "latency_ms": {"p99": 90.0}}),
        );
        write(
            &dir,
            "tree-svc-send-c1.json",
            json!({"rps": 100.0, "latency_ms": {"p50": 9.0, "p99": 14.0}}),
        );
        write(
            &dir,
            "tree-db-branch-history-c1.json",
            json!({"tps": 2000.0, "latency_ms": {"p50": 0.4, "p99": 0.9}}),
        );
        let r = assemble(&dir);
        let _ = std::fs::remove_dir_all(&dir);

        let page = r["tree"]["page"].as_array().unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page[2]["db"], Value::Null, "no pgbench file for c=64");
        assert_eq!(r["tree"]["send"]["history_db"]["tps"], json!(2000.0));
        let levels = r["levels"].as_array().unwrap();
        let level = |c: u64| {
            levels
                .iter()
                .find(|l| {
                    l["level"] == format!("branch page p99 with a 10,000-message branch, c={c}")
                })
                .unwrap()
                .clone()
        };
        assert_eq!(level(1)["pass"], json!(true));
        assert_eq!(level(1)["measured"], json!("4.50 ms"));
        assert_eq!(level(16)["pass"], json!(false));

        let md = crate::report_md::render(&r, None);
        assert!(
            md.contains("## The deep chat: a branch page and a send"),
            "{md}"
        );
        assert!(
            md.contains("| branch page | 1 | 400 | 2.00 | 4.50 | 500 | 1.50 | 3.00 | 0.80 |"),
            "{md}"
        );
        assert!(
            md.contains("| branch page | 64 | 950 | – | 90.00 | – | – | – | – |"),
            "{md}"
        );
        assert!(md.contains("| send in the deep chat (ceiling: its history read) | 1 | 100 | 9.00 | 14.00 | 2000 | 0.40 | 0.90 | 0.05 |"), "{md}");
        assert!(md.contains("| branch page p99 with a 10,000-message branch, c=16 | < 10 ms | 25.00 ms | ❌ fail |"), "{md}");
    }

    #[test]
    fn a_run_without_the_deep_chat_has_no_section_and_unmeasured_levels() {
        let dir =
            std::env::temp_dir().join(format!("loadgen-report-notree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(
            &dir,
            "meta.json",
            json!({"concurrency": [1], "chats": 1000}),
        );
        let r = assemble(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(r["tree"], Value::Null);
        let md = crate::report_md::render(&r, None);
        assert!(!md.contains("## The deep chat"));
        assert!(md.contains("| branch page p99 with a 10,000-message branch, c=1 | < 10 ms | n/a | – not measured |"), "{md}");
    }
}
