//! The branch page on the request's thread: a page of a chat's active branch with the
//! owner check, and the ownership check of an empty page.

use super::{bad_row, map_error, message_row, LocalReads, Prepared};
use crate::repo::branches::{BranchedRow, ACTIVE_PAGE_SQL};
use domain::model::Message;
use domain::ports::StoreError;
use tokio_postgres::{Client, Row, Statement};

/// Whether the owner owns the chat: the second statement of an empty page.
const OWNS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM chats WHERE id = $1 AND owner = $2)";

/// The branch page's statements.
pub(crate) struct Pages {
    active_page: Statement,
    owns: Statement,
}

impl Prepared for Pages {
    const OPTIONS: &'static str = "";

    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            active_page: client.prepare(ACTIVE_PAGE_SQL).await?,
            owns: client.prepare(OWNS_SQL).await?,
        })
    }
}

impl LocalReads<Pages> {
    /// [`crate::repo::branches::owned_active_page`] on this thread's connection, with the
    /// ownership check of an empty page: `None` when `owner` does not own the chat.
    pub(crate) async fn owned_active_page(
        &self,
        chat_id: uuid::Uuid,
        owner: &str,
        after: i32,
        limit: i64,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        let c = self.conn().await?;
        let s = &c.statements;
        let rows = c
            .client
            .query(&s.active_page, &[&chat_id, &owner, &after, &limit])
            .await
            .map_err(map_error)?;
        if rows.is_empty() {
            let owned: bool = c
                .client
                .query_one(&s.owns, &[&chat_id, &owner])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(map_error)?;
            return Ok(owned.then(Vec::new));
        }
        rows.iter()
            .map(|r| {
                branched(r)
                    .map_err(bad_row)?
                    .into_domain()
                    .map_err(StoreError::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A row of [`ACTIVE_PAGE_SQL`] (`b.*` then `branch_count`), by column name.
fn branched(r: &Row) -> Result<BranchedRow, tokio_postgres::Error> {
    Ok(BranchedRow {
        message: message_row(r)?,
        branch_index: r.try_get("branch_index")?,
        branch_count: r.try_get("branch_count")?,
        prev_id: r.try_get("prev_id")?,
        next_id: r.try_get("next_id")?,
    })
}
