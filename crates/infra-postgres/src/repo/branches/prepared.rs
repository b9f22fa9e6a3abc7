//! Raw statements that diesel keeps prepared.
//!
//! `diesel::sql_query` marks every statement unsafe to cache, so each call is sent as
//! an unnamed statement and parsed and planned again: for the recursive branch reads
//! planning costs several times their execution (2.4–4.5 ms against 0.3–3 ms on the
//! bench's deep chat). A [`Prepared`] statement is fixed text, so diesel's statement
//! cache keeps it prepared per connection, keyed by its SQL; PostgreSQL then plans it
//! once (or switches to a generic plan after five executions, which for these
//! statements is the same index-only-probe plan: every predicate is an equality or a
//! range on an index, whatever the values).
//!
//! The text numbers its parameters `$1`, `$2`, … and may use one several times; each
//! occurrence is sent as a parameter of its own with the same value (diesel numbers
//! placeholders in the order they are pushed). The text must not contain `$` otherwise.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Untyped, Uuid as SqlUuid};
use diesel::{QueryResult, RunQueryDsl};
use uuid::Uuid;

/// A parameter value.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Uuid(Uuid),
    Text(String),
    OptUuid(Option<Uuid>),
    Int(i32),
    Big(i64),
}

/// A fixed statement with its parameters (`binds[0]` is `$1`).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    sql: &'static str,
    binds: Vec<Bind>,
}

impl Prepared {
    pub(crate) fn new(sql: &'static str, binds: Vec<Bind>) -> Self {
        Self { sql, binds }
    }
}

/// Splits `sql` at its placeholders: the text before each one and its number.
fn pieces(sql: &str) -> (Vec<(&str, usize)>, &str) {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        let digits = rest[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
        let n = rest[i + 1..i + 1 + digits].parse().unwrap_or(0);
        out.push((&rest[..i], n));
        rest = &rest[i + 1 + digits..];
    }
    (out, rest)
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let (parts, tail) = pieces(self.sql);
        for (text, n) in parts {
            out.push_sql(text);
            let bind = n
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("statement parameter ${n} has no value").into(),
                    )
                })?;
            match bind {
                Bind::Uuid(v) => out.push_bind_param::<SqlUuid, _>(v)?,
                Bind::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Bind::OptUuid(v) => out.push_bind_param::<Nullable<SqlUuid>, _>(v)?,
                Bind::Int(v) => out.push_bind_param::<Integer, _>(v)?,
                Bind::Big(v) => out.push_bind_param::<BigInt, _>(v)?,
            }
        }
        out.push_sql(tail);
        Ok(())
    }
}

/// No static id: the statement cache keys it by its SQL text and parameter types.
impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;

    #[test]
    fn every_occurrence_of_a_parameter_is_a_placeholder_of_its_own() {
        let (parts, tail) = pieces("a = $1 AND b = $12 OR c = $1");
        assert_eq!(parts, vec![("a = ", 1), (" AND b = ", 12), (" OR c = ", 1)]);
        assert_eq!(tail, "");
        let id = Uuid::nil();
        let q = Prepared::new(
            "SELECT $2 WHERE x = $1 AND y = $1 LIMIT $3",
            vec![Bind::Uuid(id), Bind::OptUuid(None), Bind::Big(5)],
        );
        let sql = debug_query::<Pg, _>(&q).to_string();
        assert!(
            sql.starts_with("SELECT $1 WHERE x = $2 AND y = $3 LIMIT $4"),
            "{sql}"
        );
        assert!(sql.contains("[None, 00000000-0000-0000-0000-000000000000, 00000000-0000-0000-0000-000000000000, 5]"), "{sql}");
    }

    #[test]
    fn a_parameter_without_a_value_is_an_error_not_a_panic() {
        let q = Prepared::new("SELECT $2", vec![Bind::Int(1)]);
        let mut qb = <Pg as diesel::backend::Backend>::QueryBuilder::default();
        assert!(q.to_sql(&mut qb, &Pg).is_err());
    }
}
