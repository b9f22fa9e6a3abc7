//! Before a measured run: the chats each worker sends to (created through the API), or
//! existing chats to read (found by listing a sample of users; created when there are
//! none, e.g. on in-memory storage).

use crate::acks::Acks;
use crate::cli::{RunArgs, Scenario};
use crate::ops;
use crate::stats::{Outcome, Recorder};
use crate::target::{Tokens, Users};
use anyhow::{bail, Context};
use futures::StreamExt;
use reqwest::header::AUTHORIZATION;
use reqwest::Client;
use serde_json::Value;

/// A chat and the user owning it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The owner (token subject).
    pub user: String,
    /// The chat id.
    pub chat: String,
}

/// The chats a run works on.
#[derive(Debug, Default)]
pub struct Plan {
    /// Per worker, the chats it sends to in turn (send/stream without shared chats).
    pub own: Vec<Vec<Owned>>,
    /// Chats any worker may pick at random (reads, and shared sends).
    pub pool: Vec<Owned>,
}

/// How many chats are created at once during setup.
const SETUP_CONCURRENCY: usize = 16;

/// The base name of a user set (`name`, or the prefix of a range).
fn base_name(users: &Users) -> String {
    match users {
        Users::One(u) => u.clone(),
        Users::Range { prefix, .. } => prefix.clone(),
    }
}

/// Creates `n` chats for `user`.
pub async fn create_chats(
    client: &Client,
    base: &str,
    tokens: &mut Tokens,
    user: &str,
    n: u32,
    acks: &Acks,
) -> anyhow::Result<Vec<Owned>> {
    let bearer = tokens.bearer(user)?;
    let results: Vec<(Outcome, Option<String>)> = futures::stream::iter(0..n)
        .map(|i| {
            let bearer = bearer.clone();
            async move {
                let mut rec = Recorder::default();
                let title = format!("loadgen {user} {i}");
                ops::create_chat(client, base, &bearer, &title, acks, &mut rec).await
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    for (outcome, id) in results {
        match (outcome, id) {
            (Outcome::Ok, Some(chat)) => out.push(Owned {
                user: user.to_owned(),
                chat,
            }),
            (o, _) => bail!("setup: creating a chat for {user} failed: {o:?}"),
        }
    }
    Ok(out)
}

/// Up to 100 of `user`'s chats with at least `min_messages` messages.
async fn chats_of(
    client: &Client,
    base: &str,
    bearer: &str,
    user: &str,
    min_messages: u64,
) -> anyhow::Result<Vec<Owned>> {
    let mut rec = Recorder::default();
    let req = client
        .get(format!("{base}/api/v1/chats?limit=100"))
        .header(AUTHORIZATION, bearer);
    let (outcome, body) = ops::json_call(req, &mut rec).await;
    if outcome != Outcome::Ok {
        bail!("setup: listing {user}'s chats failed: {outcome:?} {body}");
    }
    let items = body["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter(|c| c["messageCount"].as_u64().unwrap_or(0) >= min_messages)
        .filter_map(|c: &Value| c["id"].as_str())
        .map(|id| Owned {
            user: user.to_owned(),
            chat: id.to_owned(),
        })
        .collect())
}

/// Prepares what `args.scenario` needs on `base`.
pub async fn prepare(
    client: &Client,
    base: &str,
    args: &RunArgs,
    tokens: &mut Tokens,
    acks: &Acks,
) -> anyhow::Result<Plan> {
    let users = Users::parse(&args.users)?;
    let mut plan = Plan::default();
    match args.scenario {
        Scenario::Send | Scenario::Stream => {
            let name = base_name(&users);
            if args.existing_chats {
                for user in users.sample(50) {
                    let bearer = tokens.bearer(&user)?;
                    plan.pool
                        .extend(chats_of(client, base, &bearer, &user, 0).await?);
                }
                anyhow::ensure!(!plan.pool.is_empty(), "setup: the users have no chats");
            } else if let Some(n) = args.shared_chats {
                plan.pool = create_chats(client, base, tokens, &name, n.max(1), acks).await?;
            } else {
                for w in 0..args.concurrency {
                    let user = format!("{name}-w{w}");
                    let n = args.chats_per_worker.max(1);
                    plan.own
                        .push(create_chats(client, base, tokens, &user, n, acks).await?);
                }
            }
        }
        Scenario::GetChat | Scenario::ListMessages => {
            let min = if args.scenario == Scenario::ListMessages {
                2
            } else {
                0
            };
            for user in users.sample(50) {
                let bearer = tokens.bearer(&user)?;
                plan.pool
                    .extend(chats_of(client, base, &bearer, &user, min).await?);
            }
            if plan.pool.is_empty() {
                plan.pool = seed_via_api(client, base, args, tokens, &users, acks).await?;
            }
        }
        Scenario::CreateChat
        | Scenario::ListChats
        | Scenario::Search
        | Scenario::MessageSearch
        | Scenario::LlmDirect => {}
    }
    Ok(plan)
}

/// No chats to read (fresh in-memory service): create 20 for the first user, with four
/// sends each for `list-messages`.
async fn seed_via_api(
    client: &Client,
    base: &str,
    args: &RunArgs,
    tokens: &mut Tokens,
    users: &Users,
    acks: &Acks,
) -> anyhow::Result<Vec<Owned>> {
    let user = users
        .sample(1)
        .into_iter()
        .next()
        .context("setup: no user")?;
    let chats = create_chats(client, base, tokens, &user, 20, acks).await?;
    if args.scenario == Scenario::ListMessages {
        let bearer = tokens.bearer(&user)?;
        for c in &chats {
            for i in 0..4 {
                let mut rec = Recorder::default();
                let content = format!("seed message {i}");
                let o = ops::send_message(client, base, &bearer, &c.chat, &content, acks, &mut rec)
                    .await;
                if o != Outcome::Ok {
                    bail!("setup: seeding messages failed: {o:?}");
                }
            }
        }
    }
    Ok(chats)
}
