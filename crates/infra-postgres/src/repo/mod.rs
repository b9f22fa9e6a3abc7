//! Repository functions: plain functions over `&mut PgConnection`, one statement or a
//! few each, so the adapter can compose several of them in one `conn.transaction`.

pub(crate) mod branches;
pub(crate) mod chats;
pub(crate) mod data;
pub(crate) mod finish;
pub(crate) mod idempotency;
pub(crate) mod messages;
pub(crate) mod outbox;
#[macro_use]
pub(crate) mod prepared;
pub(crate) mod search;
pub(crate) mod search_recent;
pub(crate) mod search_words;
pub(crate) mod title_search;
pub(crate) mod turn;
pub(crate) mod usage;
