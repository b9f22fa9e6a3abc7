//! Model discovery: reads each discovering provider's `GET {base}/models` at start and
//! periodically, into the catalog. A provider that does not answer (or answers with
//! nothing usable) keeps its last list; a failure is logged when it starts, and the
//! recovery when the provider answers again.

use crate::catalog::ProviderCatalog;
use crate::config::ApiKey;
use crate::openai::OpenAiConfigError;
use domain::model::{ModelName, ProviderName};
use futures::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::Url;
use serde::Deserialize;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest a `GET /models` may take.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `GET /models` body read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most models taken from one provider's list (the rest are left out, logged).
pub const MAX_MODELS: usize = 1000;
/// How soon a provider that has never answered is asked again (when the interval is longer).
pub const RETRY_UNANSWERED: Duration = Duration::from_secs(30);

/// Why a provider's list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No answer: connection refused or reset, or the time limit ran out.
    #[error("the provider did not answer: {0}")]
    Unreachable(String),
    /// An answer that is not a success.
    #[error("the provider answered HTTP {0}")]
    Status(u16),
    /// An answer that is not a model list (or too large).
    #[error("the provider's model list is unreadable: {0}")]
    Malformed(String),
    /// A list with no usable model name.
    #[error("the provider listed no usable model")]
    Empty,
}

#[derive(Debug, Deserialize)]
struct WireList {
    data: Vec<WireModel>,
}

#[derive(Debug, Deserialize)]
struct WireModel {
    id: serde_json::Value,
}

/// Reads one provider's model list.
#[derive(Debug, Clone)]
pub struct ModelLister {
    http: reqwest::Client,
    url: Url,
    auth: Option<HeaderValue>,
}

impl ModelLister {
    /// A lister of `{base_url}/models`, sending `key` as a bearer token.
    pub fn new(
        base_url: &str,
        key: Option<&ApiKey>,
        connect_timeout: Duration,
    ) -> Result<Self, OpenAiConfigError> {
        let base = base_url.trim().trim_end_matches('/');
        let bad = || OpenAiConfigError::BaseUrl(base_url.to_owned());
        let url = Url::parse(&format!("{base}/models")).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        let auth = match key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose()))
                    .map_err(|_| OpenAiConfigError::ApiKey)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(DISCOVERY_TIMEOUT)
            .user_agent(concat!("chat-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpenAiConfigError::Client(e.to_string()))?;
        Ok(Self { http, url, auth })
    }

    /// The URL it reads.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The provider's models, in its order: names that are not valid model names are
    /// left out, at most [`MAX_MODELS`].
    pub async fn list(&self) -> Result<Vec<ModelName>, DiscoveryError> {
        let mut req = self
            .http
            .get(self.url.clone())
            .header(ACCEPT, "application/json");
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let unreachable = |e: reqwest::Error| DiscoveryError::Unreachable(e.to_string());
        let response = req.send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        let mut bytes = response.bytes_stream();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(unreachable)?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(DiscoveryError::Malformed(format!(
                    "larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let wire: WireList =
            serde_json::from_slice(&body).map_err(|e| DiscoveryError::Malformed(e.to_string()))?;
        let mut out: Vec<ModelName> = Vec::new();
        let mut skipped = 0usize;
        for m in wire.data {
            match m.id.as_str().map(ModelName::parse) {
                Some(Ok(name)) if !out.contains(&name) => out.push(name),
                Some(Ok(_)) => {}
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::debug!(url = %self.url, skipped, "models with unusable names left out");
        }
        if out.len() > MAX_MODELS {
            tracing::warn!(url = %self.url, listed = out.len(), kept = MAX_MODELS, "a provider lists more models than kept");
            out.truncate(MAX_MODELS);
        }
        if out.is_empty() {
            return Err(DiscoveryError::Empty);
        }
        Ok(out)
    }
}

/// Keeps the catalog's discovered lists fresh.
#[derive(Debug)]
pub struct Discovery {
    catalog: Arc<ProviderCatalog>,
    targets: Vec<(ProviderName, ModelLister)>,
    interval: Duration,
    failing: Mutex<HashSet<ProviderName>>,
}

impl Discovery {
    /// Discovery of `targets` into `catalog`, every `interval`.
    pub fn new(
        catalog: Arc<ProviderCatalog>,
        targets: Vec<(ProviderName, ModelLister)>,
        interval: Duration,
    ) -> Self {
        Self {
            catalog,
            targets,
            interval,
            failing: Mutex::new(HashSet::new()),
        }
    }

    /// Whether there is anything to discover.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Reads every provider's list once (concurrently) and stores what answered; a
    /// provider that fails keeps its last list. Returns each provider's outcome (the
    /// number of models it listed).
    pub async fn refresh(&self) -> Vec<(ProviderName, Result<usize, DiscoveryError>)> {
        let reads = self.targets.iter().map(|(provider, lister)| async move {
            let outcome = lister.list().await;
            (provider.clone(), outcome)
        });
        let mut report = Vec::new();
        for (provider, outcome) in futures::future::join_all(reads).await {
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(models) => {
                    let n = models.len();
                    if failing.remove(&provider) {
                        tracing::info!(%provider, models = n, "provider lists its models again");
                    }
                    if self.catalog.set_discovered(&provider, models) {
                        tracing::info!(%provider, models = n, "provider's model list changed");
                    }
                    report.push((provider, Ok(n)));
                }
                Err(error) => {
                    let kept = self.catalog.discovered(&provider).map_or(0, |l| l.len());
                    if failing.insert(provider.clone()) {
                        tracing::warn!(%provider, %error, kept, "cannot read the provider's model list; keeping the last one");
                    } else {
                        tracing::debug!(%provider, %error, "provider's model list still unreadable");
                    }
                    report.push((provider, Err(error)));
                }
            }
        }
        report
    }

    /// The pause before the next refresh: the interval, or sooner while a provider has
    /// never answered.
    fn pause(&self) -> Duration {
        let unanswered = self
            .targets
            .iter()
            .any(|(p, _)| self.catalog.discovered(p).is_none());
        if unanswered {
            self.interval.min(RETRY_UNANSWERED)
        } else {
            self.interval
        }
    }

    /// Refreshes after each pause until `stop` resolves. (The first read is the
    /// caller's, at start, with [`Self::refresh`].)
    pub async fn run<S: Future<Output = ()>>(self, stop: S) {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.pause()) => {}
            }
            tokio::select! {
                () = &mut stop => return,
                _ = self.refresh() => {}
            }
        }
    }
}
