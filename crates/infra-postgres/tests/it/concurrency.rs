//! Many writers on one chat, from many tasks and from two pools (as two replicas would):
//! `seq` stays gapless and every acknowledged message is stored.

use crate::support::*;
use chrono::Duration;
use domain::model::Tweak;
use domain::model::{Chat, EventKind, MessageId, MessageStatus};
use domain::ports::{ChatRepository, MessageRepository, StoreError};
use infra_postgres::testing::TestDb;
use infra_postgres::PgStore;
use std::collections::HashSet;

/// One writer's loop, as the message service does it: read the count, start a turn,
/// retry on `Conflict`; when `finish` is set, also wait while the chat is busy and
/// finish the reply, so the next turn can start.
async fn writer(s: PgStore, c: Chat, turns: usize, finish: bool) -> Vec<MessageId> {
    let mut acked = Vec::new();
    for i in 0..turns {
        loop {
            let current = s.find_chat(c.id()).await.unwrap().unwrap();
            let mut t = turn(&current, current.message_count(), &format!("m{i}"));
            if !finish {
                t.stale_before = now() + Duration::hours(1); // replies never block
            }
            match s.start_turn(&t).await {
                Ok(()) => {
                    acked.extend([t.user_message.as_ref().unwrap().id(), t.reply.id()]);
                    if finish {
                        let mut r = t.reply.clone();
                        r.tweak(|p| {
                            p.status = MessageStatus::Complete;
                            p.content = "done".into();
                            p.updated_at = now();
                        });
                        let e = event(
                            &c,
                            EventKind::MessageCompleted {
                                message: r.clone(),
                                latency_ms: 1,
                            },
                        );
                        assert!(s.finish_reply(&r, &e, None).await.unwrap());
                    }
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::ChatBusy) if finish => {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    acked
}

async fn hammer(db: &TestDb, writers: usize, turns: usize, finish: bool) {
    // Two pools, as two processes would have.
    let pools = [db.store(), db.store()];
    let c = chat("alice", "Hammered");
    pools[0].insert_chat(&c, &created(&c)).await.unwrap();
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(writer(pools[w % 2].clone(), c.clone(), turns, finish)))
        .collect();
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let n = u32::try_from(writers * turns * 2).unwrap();
    assert_eq!(acked.len(), n as usize);
    let stored = pools[1].list_messages(c.id(), None, 1000).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq()).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    let ids: HashSet<_> = stored.iter().map(|m| m.id()).collect();
    assert_eq!(ids, acked);
    let chat = pools[0].find_chat(c.id()).await.unwrap().unwrap();
    assert_eq!(chat.message_count(), n);
    if finish {
        assert!(stored.iter().all(|m| m.status() == MessageStatus::Complete));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_turns_from_two_pools_stay_gapless() {
    let db = TestDb::new();
    hammer(&db, 12, 6, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn busy_chat_turns_from_two_pools_serialize_and_all_finish() {
    let db = TestDb::new();
    hammer(&db, 6, 4, true).await;
}
