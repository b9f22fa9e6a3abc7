//! Statements of fixed text that PostgreSQL plans once per connection: diesel prepares
//! a query as a named statement, and reuses it, only when its type says its SQL never
//! changes (a static `QueryId`); its DSL never says so for `UPDATE`, upserts or
//! `sql_query`, which are sent unnamed and planned at every execution. Each statement
//! here is its own type whose SQL is a constant, so it is prepared once.
//!
//! A constant written in the SQL (such as `status = 'streaming'`) stays a constant of
//! the prepared statement, so its generic plan still proves a partial index applies.

/// Skips the placeholder (`$` and its digits) at the start of `s`.
pub(crate) fn after_placeholder(s: &str) -> &str {
    let rest = s.get(1..).unwrap_or("");
    rest.trim_start_matches(|c: char| c.is_ascii_digit())
}

/// Defines a statement type: its fields are bound, in order, to the placeholders
/// `$1`, `$2`… of the SQL (each used once, in that order; no `$` elsewhere).
macro_rules! prepared {
    (
        $(#[$meta:meta])*
        $name:ident { $($field:ident: $rty:ty => $sqlty:ty),* $(,)? }
        $sql:expr
    ) => {
        $(#[$meta])*
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: &'a $rty,)*
        }

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for $name<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
            ) -> diesel::QueryResult<()> {
                #[allow(unused_mut)]
                let mut rest: &str = $sql;
                $(
                    let at = rest.find('$').unwrap_or(rest.len());
                    out.push_sql(&rest[..at]);
                    out.push_bind_param::<$sqlty, _>(self.$field)?;
                    rest = $crate::repo::prepared::after_placeholder(&rest[at..]);
                )*
                out.push_sql(rest);
                Ok(())
            }
        }

        impl diesel::query_builder::Query for $name<'_> {
            type SqlType = diesel::sql_types::Untyped;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $name<'_> {}
    };
}

pub(crate) use prepared;

/// The columns of a `MessageRow`, in its field order, for statements written in SQL.
macro_rules! message_columns {
    () => {
        "id, chat_id, seq, parent_id, role, content, status, model, prompt_tokens, \
         completion_tokens, error, created_at, updated_at"
    };
}

pub(crate) use message_columns;

/// The SQL a statement sends (for tests).
#[cfg(test)]
pub(crate) fn sql_of<T>(q: &T) -> String
where
    T: diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId,
{
    let s = diesel::debug_query::<diesel::pg::Pg, _>(q).to_string();
    s.split(" -- binds:").next().unwrap_or("").to_owned()
}
