//! The text-search configuration of message search: the generated `content_tsv`
//! column is rebuilt at start-up when it was built with another configuration.

use crate::errors::PgError;
use crate::store::PgStore;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use domain::ports::StoreError;

/// Key of the advisory lock held while the column is rebuilt (`'tsconf'`).
const REBUILD_LOCK: i64 = 0x7473_636f_6e66;

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// Whether `name` is a plain (optionally schema-qualified) lowercase identifier.
pub fn is_config_name(name: &str) -> bool {
    let part = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && p.len() <= 63
    };
    match name.split_once('.') {
        Some((schema, n)) => part(schema) && part(n),
        None => part(name),
    }
}

fn rebuild(conn: &mut PgConnection, config: &str) -> Result<bool, PgError> {
    let canonical = diesel::sql_query("SELECT $1::regconfig::text AS value")
        .bind::<Text, _>(config)
        .get_result::<One>(conn)?
        .value
        .unwrap_or_default();
    if !is_config_name(&canonical) {
        return Err(PgError::Data(format!(
            "text-search configuration {canonical:?} is not a plain name"
        )));
    }
    let current = diesel::sql_query(
        "SELECT pg_get_expr(d.adbin, d.adrelid) AS value FROM pg_attrdef d \
         JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
         WHERE d.adrelid = 'messages'::regclass AND a.attname = 'content_tsv'",
    )
    .get_result::<One>(conn)
    .optional()?
    .and_then(|o| o.value)
    .unwrap_or_default();
    if current.contains(&format!("'{canonical}'::regconfig")) {
        return Ok(false);
    }
    conn.transaction(|c| {
        diesel::sql_query("ALTER TABLE messages DROP COLUMN content_tsv").execute(c)?;
        diesel::sql_query(format!(
            "ALTER TABLE messages ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS ( \
             to_tsvector('{canonical}'::regconfig, regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))) STORED"
        ))
        .execute(c)?;
        diesel::sql_query(
            "CREATE INDEX messages_search_idx ON messages USING gin (owner, chat_id, content_tsv)",
        )
        .execute(c)?;
        // The word index holds the old configuration's lexemes: filled again.
        diesel::sql_query("TRUNCATE message_terms").execute(c)?;
        diesel::sql_query(
            "INSERT INTO message_terms (owner, lexeme, created_at, message_id, n) \
             SELECT m.owner, u.lexeme, m.created_at, m.id, coalesce(array_length(u.positions, 1), 0) \
             FROM messages m, unnest(m.content_tsv) u",
        )
        .execute(c)?;
        Ok::<_, PgError>(())
    })?;
    Ok(true)
}

impl PgStore {
    /// Makes message search use the configured text-search configuration
    /// (`PgConfig::text_search_config`): when `content_tsv` was built with another one,
    /// rebuilds it, its index and the word index `message_terms` (rewriting `messages`,
    /// under an advisory lock, with no statement timeout; replicas starting together wait
    /// and find it done). Returns whether it rebuilt. An unknown configuration is an
    /// error.
    pub async fn apply_text_search_config(&self) -> Result<bool, StoreError> {
        let config = self.config().text_search_config.clone();
        if !is_config_name(&config) {
            return Err(StoreError::Unknown(anyhow::anyhow!(
                "text-search configuration {config:?} is not a plain name"
            )));
        }
        self.run(move |c| {
            diesel::sql_query("SET statement_timeout = 0").execute(c)?;
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(REBUILD_LOCK)
                .execute(c)?;
            let result = rebuild(c, &config);
            diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(REBUILD_LOCK)
                .execute(c)?;
            diesel::sql_query("RESET statement_timeout").execute(c)?;
            result
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::is_config_name;

    #[test]
    fn config_names() {
        assert!(is_config_name("simple"));
        assert!(is_config_name("pg_catalog.english"));
        assert!(!is_config_name("english'; drop table x; --"));
        assert!(!is_config_name("English"));
        assert!(!is_config_name(""));
    }
}
