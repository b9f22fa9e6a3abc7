//! Unit tests of the data services' rules (search, export, erasure, retention), over
//! the ports' mocks.

use super::*;
use crate::model::*;
use crate::ports::*;
use chrono::{TimeZone, Utc};
use futures::executor::block_on;
use futures::StreamExt;
use std::sync::Arc;

fn clock() -> Arc<dyn Clock> {
    let mut c = MockClock::new();
    c.expect_now()
        .returning(|| Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    Arc::new(c)
}

fn chat(owner: &str, count: u32) -> Chat {
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Chat::restore(crate::model::ChatParts {
        id: ChatId::new(),
        owner: UserId::parse(owner).unwrap(),
        title: ChatTitle::default(),
        settings: ChatSettings::default(),
        message_count: count,
        active_leaf_id: None,
        created_at: t,
        updated_at: t,
    })
}

#[test]
fn searching_another_users_chat_is_not_found_and_reads_nothing() {
    let c = chat("bob", 0);
    let mut chats = MockChatRepository::new();
    let found = c.clone();
    chats
        .expect_find_chat()
        .returning(move |_| Ok(Some(found.clone())));
    let search = MockMessageSearchRepository::new(); // any call would panic
    let s = SearchService::new(Arc::new(chats), Arc::new(search));
    let r = block_on(s.search(
        &Actor::new(UserId::parse("alice").unwrap()),
        Some(c.id()),
        MessageQuery::parse("x").unwrap(),
        PageRequest {
            limit: PageLimit::default(),
            after: None,
        },
    ));
    assert!(matches!(r, Err(DataError::NotFound)));
}

#[test]
fn a_small_erasure_finishes_at_once_with_one_user_erased_event() {
    let mut repo = MockErasureRepository::new();
    repo.expect_request_erasure()
        .times(1)
        .returning(|_, _| Ok(()));
    repo.expect_erase_chats().times(1).returning(|_, _, _| {
        Ok(ErasedBatch {
            chats: 2,
            messages: 5,
            more: false,
        })
    });
    repo.expect_finish_erasure()
        .times(1)
        .withf(|u, e| e.kind == EventKind::UserErased && e.user_id == *u)
        .returning(|_, _| Ok(true));
    let s = ErasureService::new(Arc::new(repo), clock());
    let r = block_on(s.erase(&UserId::parse("alice").unwrap())).unwrap();
    assert!(matches!(
        r,
        Erasure::Done(ErasureReport {
            chats: 2,
            messages: 5
        })
    ));
}

#[test]
fn a_large_erasure_is_left_to_its_job_which_finishes_it() {
    let mut repo = MockErasureRepository::new();
    repo.expect_request_erasure().returning(|_, _| Ok(()));
    let mut left = 3;
    repo.expect_erase_chats()
        .times(3)
        .returning(move |_, _, _| {
            left -= 1;
            Ok(ErasedBatch {
                chats: 1,
                messages: 1,
                more: left > 0,
            })
        });
    repo.expect_finish_erasure()
        .times(1)
        .returning(|_, _| Ok(true));
    let s = ErasureService::new(Arc::new(repo), clock()).with_batch(1);
    let Erasure::Started(job) = block_on(s.erase(&UserId::parse("big").unwrap())).unwrap() else {
        panic!("more than one batch is a background job");
    };
    let report = block_on(job.run()).unwrap();
    assert_eq!(
        report,
        ErasureReport {
            chats: 3,
            messages: 3
        }
    );
}

#[test]
fn a_sweep_goes_on_while_batches_are_full_and_stops_when_another_replica_sweeps() {
    let mut repo = MockRetentionRepository::new();
    let mut calls = 0;
    repo.expect_delete_idle_chats()
        .times(3)
        .returning(move |before, limit, _, event| {
            calls += 1;
            assert_eq!(before, Utc.with_ymd_and_hms(2025, 12, 3, 3, 4, 5).unwrap());
            let batch: Vec<Chat> = (0..limit).map(|_| chat("alice", 0)).collect();
            assert_eq!(event(&batch[0], before).kind.type_name(), "chat.deleted");
            Ok(if calls < 3 { Some(batch) } else { None })
        });
    let s = RetentionService::new(
        Arc::new(repo),
        clock(),
        std::time::Duration::from_secs(30 * 86_400),
    );
    let r = block_on(s.sweep()).unwrap();
    assert_eq!(
        r,
        SweepReport {
            deleted: 2 * u64::from(RETENTION_BATCH),
            busy_elsewhere: true
        }
    );
}

#[test]
fn an_export_lists_each_chat_before_its_messages_and_ends_after_an_error() {
    let c = chat("alice", 2);
    let mut repo = MockExportRepository::new();
    let first = c.clone();
    repo.expect_export_chats()
        .times(1)
        .returning(move |_, _, _| Ok(vec![first.clone()]));
    repo.expect_export_messages()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable(anyhow::anyhow!("down"))));
    let s = ExportService::new(Arc::new(repo)).with_pages(1, 1);
    let items: Vec<_> = block_on(
        s.export(&Actor::new(UserId::parse("alice").unwrap()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(items.len(), 2);
    assert!(matches!(&items[0], Ok(ExportItem::Chat(x)) if x.id() == c.id()));
    assert!(matches!(items[1], Err(DataError::Unavailable(_))));
}
