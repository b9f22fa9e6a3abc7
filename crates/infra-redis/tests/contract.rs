//! The live-reply contract suite against Redis: two adapters (two connections, as two
//! processes would have) on one Redis, under a key prefix of the test's own.
//! Redis: `REDIS_URL`, else 127.0.0.1:6379 (`.ci/run` starts one when none answers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::ports::LiveReplies;
use infra_redis::{NoObserver, Redis, RedisConfig, RedisLive};
use std::sync::Arc;

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

struct Under {
    live: RedisLive,
    peer: RedisLive,
}

impl domain::testing::LiveUnderTest for Under {
    fn live(&self) -> &dyn LiveReplies {
        &self.live
    }
    fn peer(&self) -> &dyn LiveReplies {
        &self.peer
    }
}

fn adapter(prefix: &str) -> RedisLive {
    let mut cfg = RedisConfig::new(url());
    cfg.key_prefix = prefix.to_owned();
    RedisLive::new(Redis::new(cfg, Arc::new(NoObserver)).expect("a valid REDIS_URL"))
}

async fn under() -> Under {
    let prefix = format!("test:{}:", uuid::Uuid::now_v7());
    let made = Under {
        live: adapter(&prefix),
        peer: adapter(&prefix),
    };
    made.live
        .redis()
        .ping()
        .await
        .expect("Redis answers (set REDIS_URL, or start redis-server on 127.0.0.1:6379)");
    made
}

domain::live_contract_tests!(under());
