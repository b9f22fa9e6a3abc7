//! Contract cases of the `LiveReplies` port: text appended at offsets (retries never
//! doubled), read from offsets, followed live to the end; cancel requests seen by a
//! watcher; leases taken, renewed, released and found lapsed; atomic token buckets.
//!
//! An adapter's tests call [`live_contract_tests!`](crate::live_contract_tests) with an
//! async expression building a [`LiveUnderTest`] over empty state: `live` and `peer`
//! are two handles on the same state (for a shared backend, two clients, as two
//! processes would have; for an in-process one, the same value). No case sleeps: times
//! are passed explicitly, and every wait is for something the case itself does.

use crate::model::MessageId;
use crate::ports::{
    BucketLimit, LiveEnd, LiveError, LiveEvent, LiveReplies, LiveStream, LiveText, Take,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::time::Duration;

/// The adapter under test: two handles on one empty state.
pub trait LiveUnderTest: Send + Sync {
    /// The handle of "this process".
    fn live(&self) -> &dyn LiveReplies;
    /// A handle of "another process" on the same state (may be the same value).
    fn peer(&self) -> &dyn LiveReplies;
}

/// Expands to one `#[tokio::test]` per live contract case (each bounded to a minute).
/// `$make` is an async expression (evaluated once per case) returning a [`LiveUnderTest`].
#[macro_export]
macro_rules! live_contract_tests {
    ($make:expr) => {
        $crate::live_contract_tests!(@cases $make;
            live_append_and_read_from_offsets, live_a_retried_append_is_not_doubled,
            live_an_append_past_the_end_is_a_gap, live_finish_freezes_the_text_and_the_first_end_stays,
            live_follow_sends_the_rest_then_appends_then_the_end,
            live_follow_of_a_finished_reply_sends_the_rest_and_the_end_at_once,
            live_follow_waits_for_a_reply_not_started, live_follow_from_a_split_character_is_refused,
            live_followers_see_every_byte_whatever_the_chunks,
            live_cancel_is_seen_by_a_watcher_and_later_readers,
            live_lease_is_exclusive_until_it_lapses, live_lapsed_leases_are_listed_soonest_first,
            live_finish_releases_the_lease,
            live_token_bucket_bursts_then_refills, live_token_bucket_takes_n_atomically,
            live_token_buckets_hold_under_concurrent_takes
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let made = $make.await;
                tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    $crate::testing::$case(&made),
                )
                .await
                .expect("the case finished within a minute");
            }
        )*
    };
}

const TTL: Duration = Duration::from_secs(10);

fn now() -> DateTime<Utc> {
    super::fixtures::now()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

async fn text_of(live: &dyn LiveReplies, reply: MessageId, from: u64) -> LiveText {
    live.read(reply, from)
        .await
        .unwrap()
        .expect("the reply is known")
}

/// Collects a followed reply until `len` bytes past `from` arrived (checking that the
/// deltas are contiguous); returns the text.
async fn collect_to(stream: &mut LiveStream, from: u64, len: u64) -> String {
    let mut got = String::new();
    let mut at = from;
    while at < len {
        match stream.next().await {
            Some(Ok(LiveEvent::Delta { offset, text })) => {
                assert_eq!(offset, at, "deltas are contiguous");
                assert!(!text.is_empty(), "no empty delta");
                at += text.len() as u64;
                got.push_str(&text);
            }
            other => panic!("expected a delta, got {other:?}"),
        }
    }
    assert_eq!(at, len, "no delta runs past the text");
    got
}

async fn expect_end(stream: &mut LiveStream, end: LiveEnd) {
    assert_eq!(stream.next().await, Some(Ok(LiveEvent::End(end))));
    assert_eq!(stream.next().await, None, "the stream ends after the end");
}

pub async fn live_append_and_read_from_offsets(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    assert_eq!(live.read(reply, 0).await.unwrap(), None, "unknown reply");
    assert_eq!(live.append(reply, 0, "héllo").await.unwrap(), 6);
    assert_eq!(live.append(reply, 6, " wörld").await.unwrap(), 13);
    let all = text_of(peer, reply, 0).await;
    assert_eq!(
        all,
        LiveText {
            text: "héllo wörld".into(),
            len: 13,
            end: None
        }
    );
    assert_eq!(text_of(peer, reply, 6).await.text, " wörld");
    assert_eq!(text_of(peer, reply, 3).await.text, "llo wörld");
    let at_end = text_of(peer, reply, 13).await;
    assert_eq!((at_end.text.as_str(), at_end.len), ("", 13));
    assert_eq!(
        text_of(peer, reply, 99).await.text,
        "",
        "past the end: nothing"
    );
    assert_eq!(
        peer.read(reply, 2).await,
        Err(LiveError::InvalidOffset(2)),
        "inside the é"
    );
    let other = MessageId::new();
    assert_eq!(
        peer.read(other, 0).await.unwrap(),
        None,
        "replies are separate"
    );
}

pub async fn live_a_retried_append_is_not_doubled(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    assert_eq!(live.append(reply, 0, "abc").await.unwrap(), 3);
    // The same append again (its answer was lost), then one that overlaps.
    assert_eq!(live.append(reply, 0, "abc").await.unwrap(), 3);
    assert_eq!(peer.append(reply, 0, "abcdé").await.unwrap(), 6);
    assert_eq!(live.append(reply, 3, "dé").await.unwrap(), 6);
    assert_eq!(live.append(reply, 6, "").await.unwrap(), 6);
    assert_eq!(text_of(peer, reply, 0).await.text, "abcdé");
}

pub async fn live_an_append_past_the_end_is_a_gap(t: &dyn LiveUnderTest) {
    let live = t.live();
    let reply = MessageId::new();
    assert_eq!(
        live.append(reply, 4, "late").await,
        Err(LiveError::Gap { len: 0 })
    );
    live.append(reply, 0, "ab").await.unwrap();
    assert_eq!(
        live.append(reply, 5, "x").await,
        Err(LiveError::Gap { len: 2 })
    );
    assert_eq!(text_of(live, reply, 0).await.text, "ab", "nothing appended");
}

pub async fn live_finish_freezes_the_text_and_the_first_end_stays(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    live.append(reply, 0, "partial").await.unwrap();
    live.finish(reply, LiveEnd::Cancelled).await.unwrap();
    assert_eq!(live.append(reply, 7, " more").await.unwrap(), 7, "frozen");
    peer.finish(reply, LiveEnd::Complete).await.unwrap();
    let read = text_of(peer, reply, 0).await;
    assert_eq!(read.text, "partial");
    assert_eq!(read.end, Some(LiveEnd::Cancelled), "the first end stays");
    // A reply can end without any text.
    let empty = MessageId::new();
    peer.finish(empty, LiveEnd::Failed).await.unwrap();
    let read = text_of(live, empty, 0).await;
    assert_eq!((read.text.as_str(), read.len), ("", 0));
    assert_eq!(read.end, Some(LiveEnd::Failed));
}

pub async fn live_follow_sends_the_rest_then_appends_then_the_end(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    live.append(reply, 0, "Hello").await.unwrap();
    let mut s = peer.follow(reply, 2).await.unwrap();
    assert_eq!(collect_to(&mut s, 2, 5).await, "llo");
    live.append(reply, 5, ", wo").await.unwrap();
    live.append(reply, 9, "rld").await.unwrap();
    assert_eq!(collect_to(&mut s, 5, 12).await, ", world");
    live.finish(reply, LiveEnd::Complete).await.unwrap();
    expect_end(&mut s, LiveEnd::Complete).await;
}

pub async fn live_follow_of_a_finished_reply_sends_the_rest_and_the_end_at_once(
    t: &dyn LiveUnderTest,
) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    live.append(reply, 0, "all of it").await.unwrap();
    live.finish(reply, LiveEnd::Failed).await.unwrap();
    let mut s = peer.follow(reply, 4).await.unwrap();
    assert_eq!(collect_to(&mut s, 4, 9).await, "of it");
    expect_end(&mut s, LiveEnd::Failed).await;
    let mut at_end = peer.follow(reply, 9).await.unwrap();
    expect_end(&mut at_end, LiveEnd::Failed).await;
    // Past any end (what `Last-Event-ID: end` asks for): nothing but the end.
    let mut past = peer.follow(reply, u64::MAX).await.unwrap();
    expect_end(&mut past, LiveEnd::Failed).await;
    let read = text_of(peer, reply, u64::MAX).await;
    assert_eq!((read.text.as_str(), read.len), ("", 9));
}

pub async fn live_follow_waits_for_a_reply_not_started(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    let mut s = peer.follow(reply, 0).await.unwrap();
    live.append(reply, 0, "first").await.unwrap();
    assert_eq!(collect_to(&mut s, 0, 5).await, "first");
    live.finish(reply, LiveEnd::Complete).await.unwrap();
    expect_end(&mut s, LiveEnd::Complete).await;
    // A follower past any end of a reply being generated gets no text, then the end.
    let going = MessageId::new();
    live.append(going, 0, "abc").await.unwrap();
    let mut past = peer.follow(going, u64::MAX).await.unwrap();
    live.append(going, 3, "def").await.unwrap();
    live.finish(going, LiveEnd::Cancelled).await.unwrap();
    expect_end(&mut past, LiveEnd::Cancelled).await;
}

pub async fn live_follow_from_a_split_character_is_refused(t: &dyn LiveUnderTest) {
    let live = t.live();
    let reply = MessageId::new();
    live.append(reply, 0, "€uro").await.unwrap();
    assert!(matches!(
        live.follow(reply, 1).await,
        Err(LiveError::InvalidOffset(1))
    ));
    let mut s = live.follow(reply, 3).await.unwrap();
    assert_eq!(collect_to(&mut s, 3, 6).await, "uro");
}

pub async fn live_followers_see_every_byte_whatever_the_chunks(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    let text = "Ünïcödé 🦀 text, in chunks of any size: ".repeat(8);
    let mut followers = Vec::new();
    let mut at = 0usize;
    let mut size = 1usize;
    while at < text.len() {
        let mut end = (at + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        live.append(reply, at as u64, &text[at..end]).await.unwrap();
        if followers.len() < 4 {
            // Followers joining part way, from where they are.
            followers.push((at as u64, peer.follow(reply, at as u64).await.unwrap()));
        }
        at = end;
        size = size % 7 + 1;
    }
    live.finish(reply, LiveEnd::Complete).await.unwrap();
    for (from, mut s) in followers {
        let got = collect_to(&mut s, from, text.len() as u64).await;
        assert_eq!(got, &text[from as usize..]);
        expect_end(&mut s, LiveEnd::Complete).await;
    }
}

pub async fn live_cancel_is_seen_by_a_watcher_and_later_readers(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let (reply, other) = (MessageId::new(), MessageId::new());
    live.append(reply, 0, "going").await.unwrap();
    let watch = live.watch_cancel(reply).await.unwrap();
    assert!(!live.cancel_requested(reply).await.unwrap());
    peer.request_cancel(reply).await.unwrap();
    watch.await.unwrap();
    assert!(live.cancel_requested(reply).await.unwrap());
    assert!(!live.cancel_requested(other).await.unwrap(), "per reply");
    // Watching after the request resolves at once.
    live.watch_cancel(reply).await.unwrap().await.unwrap();
    // A cancel before anything was appended is seen too.
    let early = MessageId::new();
    peer.request_cancel(early).await.unwrap();
    live.watch_cancel(early).await.unwrap().await.unwrap();
}

pub async fn live_lease_is_exclusive_until_it_lapses(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    let t0 = now();
    assert_eq!(live.lease(reply).await.unwrap(), None);
    assert!(live.take_lease(reply, "a", t0, TTL).await.unwrap());
    assert!(
        live.take_lease(reply, "a", t0, TTL).await.unwrap(),
        "again by its holder"
    );
    assert!(!peer.take_lease(reply, "b", t0, TTL).await.unwrap(), "held");
    assert!(
        !peer.renew_lease(reply, "b", t0, TTL).await.unwrap(),
        "not b's"
    );
    let lease = peer.lease(reply).await.unwrap().unwrap();
    assert_eq!(lease.holder, "a");
    assert_eq!(lease.until, t0 + secs(10));
    assert!(live
        .renew_lease(reply, "a", t0 + secs(5), TTL)
        .await
        .unwrap());
    assert_eq!(
        peer.lease(reply).await.unwrap().unwrap().until,
        t0 + secs(15)
    );
    assert!(peer
        .lapsed_leases(t0 + secs(14), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        peer.lapsed_leases(t0 + secs(16), 10).await.unwrap(),
        vec![reply]
    );
    // A lapsed lease can be taken over; its old holder then cannot renew it.
    assert!(peer
        .take_lease(reply, "b", t0 + secs(16), TTL)
        .await
        .unwrap());
    assert!(!live
        .renew_lease(reply, "a", t0 + secs(16), TTL)
        .await
        .unwrap());
    peer.release_lease(reply, "a").await.unwrap();
    assert_eq!(
        peer.lease(reply).await.unwrap().unwrap().holder,
        "b",
        "not a's"
    );
    peer.release_lease(reply, "b").await.unwrap();
    assert_eq!(peer.lease(reply).await.unwrap(), None);
    assert!(
        !peer.renew_lease(reply, "b", t0, TTL).await.unwrap(),
        "released"
    );
}

pub async fn live_lapsed_leases_are_listed_soonest_first(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let t0 = now();
    let ids: Vec<MessageId> = (0..4).map(|_| MessageId::new()).collect();
    // Lapsing at t0+13, t0+11, t0+12, and one renewed far ahead.
    for (id, start) in ids.iter().zip([3, 1, 2, 0]) {
        assert!(live
            .take_lease(*id, "a", t0 + secs(start), TTL)
            .await
            .unwrap());
    }
    assert!(live
        .renew_lease(ids[3], "a", t0 + secs(100), TTL)
        .await
        .unwrap());
    let lapsed = peer.lapsed_leases(t0 + secs(20), 10).await.unwrap();
    assert_eq!(lapsed, vec![ids[1], ids[2], ids[0]]);
    assert_eq!(
        peer.lapsed_leases(t0 + secs(20), 2).await.unwrap(),
        vec![ids[1], ids[2]]
    );
    assert_eq!(
        peer.lapsed_leases(t0 + secs(12) + chrono::Duration::milliseconds(500), 10)
            .await
            .unwrap(),
        vec![ids[1], ids[2]],
        "only those lapsed before now"
    );
    peer.release_lease(ids[1], "a").await.unwrap();
    assert_eq!(
        peer.lapsed_leases(t0 + secs(20), 10).await.unwrap(),
        vec![ids[2], ids[0]]
    );
}

pub async fn live_finish_releases_the_lease(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let reply = MessageId::new();
    let t0 = now();
    assert!(live.take_lease(reply, "a", t0, TTL).await.unwrap());
    live.append(reply, 0, "some").await.unwrap();
    peer.finish(reply, LiveEnd::Failed).await.unwrap();
    assert_eq!(live.lease(reply).await.unwrap(), None);
    assert!(!live.renew_lease(reply, "a", t0, TTL).await.unwrap());
    assert!(peer
        .lapsed_leases(t0 + secs(60), 10)
        .await
        .unwrap()
        .is_empty());
}

fn limit(per_sec: f64, burst: u32) -> BucketLimit {
    BucketLimit { per_sec, burst }
}

fn wait_of(take: Take) -> Duration {
    match take {
        Take::Limited { retry_after } => retry_after,
        Take::Allowed => panic!("expected a refusal"),
    }
}

fn key() -> String {
    format!("user-{}", MessageId::new())
}

pub async fn live_token_bucket_bursts_then_refills(t: &dyn LiveUnderTest) {
    let (live, peer) = (t.live(), t.peer());
    let (k, other) = (key(), key());
    let l = limit(2.0, 3);
    let t0 = now();
    for _ in 0..3 {
        assert_eq!(live.take_tokens(&k, 1, l, t0).await.unwrap(), Take::Allowed);
    }
    let wait = wait_of(peer.take_tokens(&k, 1, l, t0).await.unwrap());
    assert!(
        wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    assert_eq!(
        peer.take_tokens(&other, 1, l, t0).await.unwrap(),
        Take::Allowed,
        "buckets are separate"
    );
    let later = t0 + chrono::Duration::milliseconds(500);
    assert_eq!(
        peer.take_tokens(&k, 1, l, later).await.unwrap(),
        Take::Allowed
    );
    assert!(matches!(
        live.take_tokens(&k, 1, l, later).await.unwrap(),
        Take::Limited { .. }
    ));
    // Refilling stops at the burst.
    let much_later = t0 + secs(3600);
    for _ in 0..3 {
        assert_eq!(
            live.take_tokens(&k, 1, l, much_later).await.unwrap(),
            Take::Allowed
        );
    }
    assert!(matches!(
        live.take_tokens(&k, 1, l, much_later).await.unwrap(),
        Take::Limited { .. }
    ));
}

pub async fn live_token_bucket_takes_n_atomically(t: &dyn LiveUnderTest) {
    let live = t.live();
    let k = key();
    let l = limit(1.0, 5);
    let t0 = now();
    assert_eq!(live.take_tokens(&k, 3, l, t0).await.unwrap(), Take::Allowed);
    let wait = wait_of(live.take_tokens(&k, 3, l, t0).await.unwrap());
    assert!(
        wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
        "one token short: {wait:?}"
    );
    assert_eq!(
        live.take_tokens(&k, 2, l, t0).await.unwrap(),
        Take::Allowed,
        "the refused take took nothing"
    );
    assert!(matches!(
        live.take_tokens(&k, 1, l, t0).await.unwrap(),
        Take::Limited { .. }
    ));
}

pub async fn live_token_buckets_hold_under_concurrent_takes(t: &dyn LiveUnderTest) {
    let k = key();
    let l = limit(0.001, 10);
    let t0 = now();
    let takes = (0..40).map(|i| {
        let handle = if i % 2 == 0 { t.live() } else { t.peer() };
        let k = k.clone();
        async move { handle.take_tokens(&k, 1, l, t0).await.unwrap() }
    });
    let results = futures::future::join_all(takes).await;
    let allowed = results.iter().filter(|r| **r == Take::Allowed).count();
    assert_eq!(allowed, 10, "exactly the burst is allowed");
}
