//! The benchmark's pgbench scripts for the branch reads are the statements the service
//! runs (`bench/pgbench/branch_*.sql`), with the deep chat's values in place of the
//! parameters (a pgbench variable where the bench varies it).

use super::{ACTIVE_PAGE_SQL, HISTORY_SQL};

/// `sql` with `$n` replaced by `values[n - 1]`.
fn substitute(sql: &str, values: &[&str]) -> String {
    let mut out = sql.to_owned();
    // Highest first, so `$1` does not eat the start of `$10`.
    for (i, v) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), v);
    }
    out
}

/// The statements of a pgbench script (lines that are neither comments nor `\` commands).
fn statements(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.trim().is_empty())
        .map(|l| l.trim_end().trim_end_matches(';').to_owned())
        .collect()
}

fn script(name: &str) -> String {
    let path = format!("{}/../../bench/pgbench/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const CHAT: &str = "bench_chat_id(3000001)";
const LEAF: &str = "bench_deep_id(10900)";

#[test]
fn the_branch_page_script_runs_the_services_statement() {
    let got = statements(&script("branch_page.sql"));
    let page = substitute(ACTIVE_PAGE_SQL, &[CHAT, "'deep'", ":after", ":lim"]);
    assert_eq!(
        got,
        vec![page],
        "bench/pgbench/branch_page.sql: the page statement, with the owner check"
    );
}

#[test]
fn the_branch_history_script_runs_the_services_statement() {
    let got = statements(&script("branch_history.sql"));
    let history = substitute(HISTORY_SQL, &[CHAT, LEAF, ":lim"]);
    assert_eq!(got, vec![history], "bench/pgbench/branch_history.sql");
}
