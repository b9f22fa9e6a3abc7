//! The domain's storage ports implemented by `PgStore`: each method converts its
//! inputs, then runs one small closure (one transaction when it changes anything).

mod branches;
mod chats;
pub(crate) mod data;
mod messages;
mod outbox;
mod turn;
mod usage;

use domain::ports::StoreError;

/// Converts a page size or position the domain gives as `u32` for a query.
fn as_i64(n: u32) -> i64 {
    i64::from(n)
}

/// Converts a bad-data error raised before a query into the domain's error.
fn data_error(msg: impl Into<String>) -> StoreError {
    crate::errors::PgError::Data(msg.into()).into()
}
