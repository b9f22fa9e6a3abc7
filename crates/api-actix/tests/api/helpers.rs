//! `TestApp`: a service on a random port over in-memory storage, with typed helpers.

use api_actix::config::Settings;
use api_actix::startup::{Adapters, Application};
use domain::ports::{EventPublisher, LlmClient};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Once};

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";

static TRACING: Once = Once::new();

/// Builds a `TestApp`.
pub struct TestAppBuilder {
    env: HashMap<String, String>,
    yaml: Option<String>,
    llm: Option<Arc<dyn LlmClient>>,
    events: Arc<dyn EventPublisher>,
    db: Option<Db>,
    live: Option<Arc<dyn domain::ports::LiveReplies>>,
    live_config: Option<domain::services::LiveConfig>,
    wrap_messages: Option<WrapMessages>,
}

/// Replaces the app's message storage with one built over it.
type WrapMessages = Box<
    dyn FnOnce(
            Arc<dyn domain::ports::MessageRepository>,
        ) -> Arc<dyn domain::ports::MessageRepository>
        + Send,
>;

/// Which database a Postgres-backed app uses.
enum Db {
    /// A fresh database of its own.
    Fresh,
    /// This URL (shared with another app, or behind a proxy).
    Url(String),
}

impl TestAppBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// A configuration file's text (the environment still overrides it).
    #[allow(dead_code)]
    pub fn yaml(mut self, yaml: &str) -> Self {
        self.yaml = Some(yaml.to_owned());
        self
    }

    pub fn llm(mut self, llm: impl LlmClient + 'static) -> Self {
        self.llm = Some(Arc::new(llm));
        self
    }

    /// PostgreSQL storage on a fresh test database (dropped with the app).
    pub fn postgres(mut self) -> Self {
        self.db = Some(Db::Fresh);
        self
    }

    /// PostgreSQL storage at `url`.
    pub fn database_url(mut self, url: &str) -> Self {
        self.db = Some(Db::Url(url.to_owned()));
        self
    }

    #[allow(dead_code)]
    pub fn events(mut self, events: Arc<dyn EventPublisher>) -> Self {
        self.events = events;
        self
    }

    /// Live reply state of the app's own (such as one shared with another app).
    #[allow(dead_code)]
    pub fn live(mut self, live: Arc<dyn domain::ports::LiveReplies>) -> Self {
        self.live = Some(live);
        self
    }

    /// Lease and waiting times of live replies.
    #[allow(dead_code)]
    pub fn live_config(mut self, config: domain::services::LiveConfig) -> Self {
        self.live_config = Some(config);
        self
    }

    /// Message storage built over the app's own (a test double wrapping it).
    #[allow(dead_code)]
    pub fn wrap_messages(
        mut self,
        wrap: impl FnOnce(
                Arc<dyn domain::ports::MessageRepository>,
            ) -> Arc<dyn domain::ports::MessageRepository>
            + Send
            + 'static,
    ) -> Self {
        self.wrap_messages = Some(Box::new(wrap));
        self
    }

    pub async fn spawn(self) -> TestApp {
        TRACING.call_once(|| {
            if std::env::var("TEST_LOG").is_ok() {
                let s = Settings::load(None, &HashMap::new()).unwrap();
                api_actix::telemetry::init(&s.log, std::io::stdout);
            }
        });
        let mut env = self.env;
        let mut test_db = None;
        match self.db {
            None => {}
            Some(Db::Fresh) => {
                let db = infra_postgres::testing::TestDb::new();
                env.insert("DATABASE_URL".into(), db.url().to_owned());
                test_db = Some(db);
            }
            Some(Db::Url(url)) => {
                env.insert("DATABASE_URL".into(), url);
            }
        }
        let settings = Settings::load(self.yaml.as_deref(), &env).unwrap();
        let (adapters, background) = if settings.database.is_some()
            || settings.kafka.is_some()
            || settings.redis.is_some()
        {
            let mut wired = api_actix::wiring::wire(&settings).await.unwrap();
            if let Some(llm) = self.llm {
                wired.adapters.llm = llm;
            }
            (wired.adapters, Some(wired.background))
        } else {
            let mut providers = api_actix::wiring::providers(&settings, &mut Vec::new())
                .await
                .unwrap();
            let llm = self.llm.unwrap_or_else(|| providers.llm.clone());
            let mut adapters = Adapters::memory(self.events, llm);
            adapters.models = providers.catalog.clone();
            let mut background = api_actix::wiring::Background::default();
            providers.spawn_discovery(&mut background);
            (adapters, Some(background))
        };
        let mut adapters = adapters;
        if let Some(live) = self.live {
            adapters.live = live;
        }
        if let Some(config) = self.live_config {
            adapters.live_config = config;
        }
        if let Some(wrap) = self.wrap_messages {
            adapters.messages = wrap(adapters.messages.clone());
        }
        let app = Application::build(&settings, adapters).unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            _db: test_db,
            _background: background,
        }
    }
}

/// A running service and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The app's own test database, if any (dropped with it).
    pub _db: Option<infra_postgres::testing::TestDb>,
    /// The outbox relay, when storage is PostgreSQL.
    pub _background: Option<api_actix::wiring::Background>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        let env = HashMap::from([
            ("HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("JWT_SECRET".to_owned(), SECRET.to_owned()),
            ("HTTP_BODY_LIMIT_BYTES".to_owned(), "65536".to_owned()),
            ("RATE_LIMIT_API_PER_SEC".to_owned(), "0".to_owned()),
            ("RATE_LIMIT_SENDS_PER_MIN".to_owned(), "0".to_owned()),
        ]);
        TestAppBuilder {
            env,
            yaml: None,
            llm: None,
            events: Arc::new(infra_memory::LogPublisher::default()),
            db: None,
            live: None,
            live_config: None,
            wrap_messages: None,
        }
    }

    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn token(sub: &str) -> String {
        api_actix::auth::mint(
            &api_actix::config::Secret::new(SECRET),
            sub,
            600,
            None,
            None,
        )
        .unwrap()
    }

    pub fn get(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(path))
            .bearer_auth(Self::token(user))
    }

    pub fn post(&self, user: &str, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(Self::token(user))
            .json(&body)
    }

    /// A POST whose body is sent as is, with this content type.
    pub fn post_raw(
        &self,
        user: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(Self::token(user))
            .header("content-type", content_type)
            .body(body.to_owned())
    }

    pub fn put(&self, user: &str, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .put(self.url(path))
            .bearer_auth(Self::token(user))
            .json(&body)
    }

    pub fn delete(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(self.url(path))
            .bearer_auth(Self::token(user))
    }

    /// Creates a chat and returns it.
    pub async fn create_chat(&self, user: &str, title: &str) -> Value {
        let r = self
            .post(user, "/api/v1/chats", json!({ "title": title }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    /// Sends a message (JSON mode) and returns the response.
    pub async fn send(&self, user: &str, chat_id: &str, content: &str) -> Response {
        self.post(
            user,
            &format!("/api/v1/messages?chatId={chat_id}"),
            json!({ "content": content }),
        )
        .send()
        .await
        .unwrap()
    }

    /// Lists all messages of a chat.
    pub async fn messages(&self, user: &str, chat_id: &str) -> Vec<Value> {
        let r = self
            .get(
                user,
                &format!("/api/v1/messages?chatId={chat_id}&limit=100"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["items"].as_array().unwrap().clone()
    }
}

/// Asserts a problem+json response with `status`, and returns its body.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let header_id = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string());
    assert_eq!(body["requestId"].as_str().map(str::to_owned), header_id);
    body
}

/// Parses a whole SSE body into `(event, data)` pairs.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    sse_events_with_ids(body)
        .into_iter()
        .map(|(_, event, data)| (event, data))
        .collect()
}

/// The complete events of an SSE body as `(id, event, data)` (a trailing partial
/// event, without its `data:` yet, is left out).
pub fn sse_events_with_ids(body: &str) -> Vec<(String, String, Value)> {
    body.split("\n\n")
        .filter(|b| b.lines().any(|l| l.starts_with("data: ")))
        .map(|block| {
            let mut id = String::new();
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(i) = line.strip_prefix("id: ") {
                    id = i.to_owned();
                } else if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (id, event, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

/// Reads a streamed body until `marker` has arrived; returns what was read.
pub async fn read_until<S, B, E>(body: &mut S, marker: &str) -> String
where
    S: futures::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    let mut seen = String::new();
    while !seen.contains(marker) {
        let chunk = futures::StreamExt::next(body)
            .await
            .expect("the stream ended early")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
    seen
}

/// An event publisher keeping every event it is given, for tests that check events.
#[derive(Debug, Clone, Default)]
#[allow(dead_code)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<domain::Event>>>);

#[allow(dead_code)]
impl Captured {
    /// The events so far, as CloudEvents.
    pub fn cloudevents(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.to_cloudevent("/chat-service"))
            .collect()
    }

    /// Waits (bounded) until an event satisfies `found`, and returns it.
    pub async fn wait_for(&self, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(e) = self.cloudevents().into_iter().find(|e| found(e)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such event among {:#?}",
                self.cloudevents()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl EventPublisher for Captured {
    async fn publish(&self, events: &[domain::Event]) -> domain::ports::PublishReport {
        self.0.lock().unwrap().extend_from_slice(events);
        domain::ports::PublishReport::delivered(events.len())
    }
}
