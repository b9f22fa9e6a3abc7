//! The contract suites: one set of cases per port, run against every adapter of it
//! (storage: memory and Postgres; the model catalog: static and provider-backed; the
//! outbox: [`outbox_contract_tests!`]; the usage ledger and quotas: [`usage_contract_tests!`];
//! live reply state: [`live_contract_tests!`]), so a test double cannot drift from the real
//! thing. Enabled by the `testing` feature.
//!
//! An adapter's tests call [`storage_contract_tests!`] with an async expression that
//! builds a fresh, empty [`Storage`]; it expands to one `#[tokio::test]` per case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod catalog;
mod chats;
mod data;
mod fixtures;
mod idempotency;
mod live;
mod messages;
mod outbox;
mod owned;
mod tree;
mod tree_lines;
mod tree_model;
mod turn;
mod usage;

pub use catalog::*;
pub use chats::*;
pub use data::*;
pub use fixtures::*;
pub use idempotency::*;
pub use live::*;
pub use messages::*;
pub use outbox::*;
pub use owned::*;
pub use tree::*;
pub use tree_lines::*;
pub use turn::*;
pub use usage::*;

use crate::ports::{ChatRepository, MessageRepository};
use std::sync::Arc;

/// The adapters under test, over one empty store.
#[derive(Clone)]
pub struct Storage {
    pub chats: Arc<dyn ChatRepository>,
    pub messages: Arc<dyn MessageRepository>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

/// Expands to one `#[tokio::test]` per contract case. `$make` is an async expression
/// (evaluated once per case) returning a [`Storage`] over an empty store; anything else
/// that must live as long as the test (such as a database handle) can be returned as
/// the second element of a tuple: `(Storage, guard)`.
#[macro_export]
macro_rules! storage_contract_tests {
    ($make:expr) => {
        $crate::storage_contract_tests!(@cases $make;
            chat_round_trip, missing_chat_is_none, update_chat_replaces_fields,
            update_or_delete_missing_chat_is_not_found, delete_chat_takes_its_messages,
            list_is_newest_activity_first_and_paginates, list_shows_only_the_owners_chats,
            search_ignores_case_and_treats_wildcards_literally, search_paginates,
            start_turn_stores_both_messages_and_counts, start_turn_without_user_message,
            start_turn_conflicts_on_stale_count, start_turn_refuses_busy_chat,
            stale_streaming_reply_does_not_block, start_turn_on_missing_chat_is_not_found,
            finish_reply_only_while_streaming, list_messages_in_order_with_cursor,
            recent_messages_newest_first_before_seq, update_message_changes_content,
            delete_message_renumbers_later_ones, delete_message_refused_while_busy,
            streaming_messages_lists_only_streaming, concurrent_turns_leave_a_gapless_sequence,
            times_round_trip_exactly, idempotency_record_is_stored_with_the_turn,
            expired_idempotency_records_are_replaced, retitle_changes_only_a_title_still_expected,
            tree_regenerated_replies_are_siblings, tree_branch_reads_follow_the_path,
            tree_reads_match_a_plain_model_of_a_grown_tree,
            tree_start_turn_refuses_a_parent_outside_the_chat,
            tree_delete_takes_the_subtree_and_moves_the_active_leaf,
            tree_select_branch_stores_only_the_active_leaf,
            tree_insert_chat_with_messages_stores_a_chain,
            tree_lines_pages_from_every_cursor_match_a_walk,
            tree_lines_pages_after_deletions_and_in_a_fork_match_a_walk,
            tree_concurrent_sends_on_two_branches_keep_seq_gapless,
            tree_idempotency_key_is_checked_before_the_busy_check,
            find_owned_message_sees_only_the_owners, list_owned_active_branch_is_the_owners_active_branch,
            update_chat_is_a_compare_and_set,
            concurrent_title_and_settings_updates_keep_both,
            run_turn_reads_the_facts_and_stores_the_decided_turn, run_turn_declined_stores_nothing,
            run_turn_claims_the_key_or_finds_its_record,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let made = $make.await;
                let storage = $crate::testing::IntoStorage::storage(&made);
                $crate::testing::$case(&storage).await;
            }
        )*
    };
}

/// What [`storage_contract_tests!`] accepts from its factory expression.
pub trait IntoStorage {
    fn storage(&self) -> Storage;
}

impl IntoStorage for Storage {
    fn storage(&self) -> Storage {
        self.clone()
    }
}

impl<G> IntoStorage for (Storage, G) {
    fn storage(&self) -> Storage {
        self.0.clone()
    }
}
