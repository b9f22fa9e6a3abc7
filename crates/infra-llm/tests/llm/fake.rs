//! The client against the `fake-llm` server: replies, every fault kind, and dropping
//! a stream closing the upstream request.

use crate::helpers::*;
use domain::ports::{LlmChunk, LlmClient, LlmError, TimeoutKind};
use domain::Usage;
use fake_llm::{FakeLlmConfig, RunningFakeLlm};
use futures::StreamExt;
use std::time::{Duration, Instant};

async fn fake(tweak: impl FnOnce(&mut FakeLlmConfig)) -> RunningFakeLlm {
    let mut cfg = FakeLlmConfig::for_tests();
    cfg.reply_tokens = 6;
    cfg.stall = Duration::from_secs(5);
    cfg.retry_after_secs = 0;
    tweak(&mut cfg);
    fake_llm::spawn(cfg).await.unwrap()
}

fn llm(fake: &RunningFakeLlm) -> infra_llm::OpenAiClient {
    let mut cfg = config(&fake.base_url());
    cfg.first_token_timeout = Duration::from_millis(500);
    cfg.idle_timeout = Duration::from_millis(500);
    client(cfg)
}

#[tokio::test]
async fn streams_the_deterministic_reply_with_usage() {
    let fake = fake(|_| {}).await;
    let out = drain(llm(&fake).stream(request("one two three")).await.unwrap()).await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, fake_llm::reply_text("one two three", 6));
    assert_eq!(out.text, "one two three one two three");
    assert_eq!(out.chunks[0], LlmChunk::Model("gpt-test".into()));
    assert!(out.chunks.contains(&LlmChunk::Finish("stop".into())));
    assert!(out.chunks.contains(&LlmChunk::Usage(Usage {
        prompt_tokens: 6,
        completion_tokens: 6
    })));
}

#[tokio::test]
async fn a_whole_reply_with_max_tokens() {
    let fake = fake(|_| {}).await;
    let mut req = request("a b c");
    req.max_tokens = Some(2);
    let reply = llm(&fake).complete(req).await.unwrap();
    assert_eq!(reply.content, "a b");
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn paced_tokens_arrive_one_by_one() {
    let fake = fake(|c| {
        c.tokens_per_sec = 50;
        c.ttft = Duration::from_millis(50);
    })
    .await;
    let started = Instant::now();
    let out = drain(llm(&fake).stream(request("w")).await.unwrap()).await;
    assert_eq!(out.text, "w w w w w w");
    assert!(
        started.elapsed() >= Duration::from_millis(140),
        "{:?}",
        started.elapsed()
    );
    let deltas = out
        .chunks
        .iter()
        .filter(|c| matches!(c, LlmChunk::Delta(_)))
        .count();
    assert_eq!(deltas, 6);
}

#[tokio::test]
async fn a_429_once_then_success() {
    let fake = fake(|_| {}).await;
    let out = drain(
        llm(&fake)
            .stream(request("hi [fault:429x1]"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "hi hi hi hi hi hi");
    assert_eq!(fake.stats().requests(), 2);
}

#[tokio::test]
async fn each_failing_status_maps_to_its_error() {
    let fake = fake(|c| c.retry_after_secs = 60).await;
    let client = llm(&fake);
    let err = |m: &'static str| {
        let client = client.clone();
        async move { client.stream(request(m)).await.err().unwrap() }
    };
    assert_eq!(
        err("x [fault:429]").await,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(
        err("x [fault:500]").await,
        LlmError::Upstream { status: Some(500) }
    );
    assert_eq!(err("x [fault:401]").await, LlmError::Unauthorized);
    assert!(
        matches!(err("x [fault:400]").await, LlmError::BadRequest(m) if m.contains("maximum context length"))
    );
    // 429 (given up at once: Retry-After too long) + 3 × 500 + 401 + 400.
    assert_eq!(fake.stats().requests(), 6);
}

#[tokio::test]
async fn a_cut_stream_keeps_the_text_so_far_and_fails() {
    let fake = fake(|_| {}).await;
    let out = drain(llm(&fake).stream(request("a b [fault:cut]")).await.unwrap()).await;
    assert_eq!(out.text, "a b a");
    assert_eq!(out.error, Some(LlmError::Stream("cut".into())));
    assert_eq!(fake.stats().requests(), 1);
}

#[tokio::test]
async fn a_malformed_chunk_fails_the_stream() {
    let fake = fake(|_| {}).await;
    let out = drain(
        llm(&fake)
            .stream(request("m [fault:malformed]"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "m m m");
    assert!(matches!(out.error, Some(LlmError::Stream(m)) if m.starts_with("malformed chunk")));
}

#[tokio::test]
async fn stalls_time_out_before_and_after_the_first_token() {
    let fake = fake(|_| {}).await;
    let client = llm(&fake);
    let err = client
        .stream(request("s [fault:stall]"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::FirstToken));
    let out = drain(client.stream(request("s [fault:stall-mid]")).await.unwrap()).await;
    assert_eq!(out.text, "s s s");
    assert_eq!(out.error, Some(LlmError::Timeout(TimeoutKind::Total)));
}

#[tokio::test]
async fn a_whole_reply_cut_or_malformed_fails() {
    let fake = fake(|_| {}).await;
    let client = llm(&fake);
    let cut = client.complete(request("c [fault:cut]")).await.unwrap_err();
    assert_eq!(cut, LlmError::Stream("cut".into()));
    let bad = client
        .complete(request("c [fault:malformed]"))
        .await
        .unwrap_err();
    assert!(matches!(bad, LlmError::Stream(m) if m.starts_with("malformed reply")));
}

#[tokio::test]
async fn the_fake_checks_the_key_when_it_has_one() {
    let fake = fake(|c| c.api_key = Some(KEY.into())).await;
    assert!(llm(&fake).complete(request("k")).await.is_ok());
    let mut cfg = config(&fake.base_url());
    cfg.api_key = infra_llm::ApiKey::new("wrong");
    assert_eq!(
        client(cfg).complete(request("k")).await.unwrap_err(),
        LlmError::Unauthorized
    );
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request() {
    let fake = fake(|c| {
        c.tokens_per_sec = 20;
        c.reply_tokens = 200;
    })
    .await;
    let mut stream = llm(&fake).stream(request("long")).await.unwrap();
    let mut deltas = 0;
    while deltas < 2 {
        if let Some(Ok(LlmChunk::Delta(_))) = stream.next().await {
            deltas += 1;
        }
    }
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.stats().dropped() == 0 {
        assert!(
            Instant::now() < deadline,
            "the fake never saw the client go away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.stats().finished(), 0);
}
