//! The OpenAI-compatible chat-completions client (OpenAI, vLLM, llama.cpp, Ollama,
//! LiteLLM): whole and streamed replies, timeouts, and retries before the first token.

use crate::chunks::chunk_stream;
use crate::config::OpenAiConfig;
use crate::errors::{Failure, CUT};
use crate::trace::traceparent;
use crate::wire::{request_body, WireCompletion};
use async_trait::async_trait;
use bytes::Bytes;
use domain::ports::{LlmChunk, LlmClient, LlmError, LlmReply, LlmRequest, LlmStream, TimeoutKind};
use futures::{stream, StreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Response, Url};
use std::future::Future;
use std::sync::Arc;
use tokio::time::{timeout_at, Instant};

/// Largest error body read from the provider.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The configuration could not make a client.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiConfigError {
    /// `base_url` is not an absolute `http(s)` URL.
    #[error("LLM_BASE_URL is not an http(s) URL: {0}")]
    BaseUrl(String),
    /// The key has characters a header cannot carry.
    #[error("LLM_API_KEY contains characters not allowed in an HTTP header")]
    ApiKey,
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A client of `POST {base_url}/chat/completions`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    auth: Option<HeaderValue>,
    config: OpenAiConfig,
}

impl OpenAiClient {
    /// Builds the client (no network access yet).
    pub fn new(config: OpenAiConfig) -> Result<Self, OpenAiConfigError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let bad_url = || OpenAiConfigError::BaseUrl(config.base_url.clone());
        let valid = Url::parse(base).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !valid {
            return Err(bad_url());
        }
        let endpoint = Url::parse(&format!("{base}/chat/completions")).map_err(|_| bad_url())?;
        let auth = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| OpenAiConfigError::ApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("chat-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpenAiConfigError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                auth,
                config,
            }),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &OpenAiConfig {
        &self.inner.config
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }
}

impl Inner {
    fn secret(&self) -> Option<&str> {
        self.config.api_key.as_ref().map(|k| k.expose())
    }

    /// Sends one attempt and returns the response if it is a success.
    async fn send(
        &self,
        body: Bytes,
        stream: bool,
        request_id: Option<&str>,
    ) -> Result<Response, Failure> {
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut builder = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .body(body);
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        if let Some(id) = request_id {
            if let Ok(value) = HeaderValue::from_str(id) {
                builder = builder.header("x-request-id", value);
            }
            builder = builder.header("traceparent", traceparent(id));
        }
        let response = builder
            .send()
            .await
            .map_err(|e| Failure::from_transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_limited(response, MAX_ERROR_BODY).await;
        Err(Failure::from_status(status, &headers, &body, self.secret()))
    }

    /// Runs `attempt` until it succeeds, fails for good, or retries run out.
    async fn retrying<T, F, Fut>(&self, deadline: Instant, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = &self.config.retry;
        let mut retry = 0;
        loop {
            let failure = match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if !failure.retriable || retry >= policy.max_retries {
                return Err(failure.error);
            }
            let delay = match failure.retry_after {
                Some(wait) if wait > policy.max_retry_after => return Err(failure.error),
                Some(wait) => wait,
                None => policy.backoff(retry),
            };
            if Instant::now() + delay >= deadline {
                return Err(failure.error);
            }
            tracing::warn!(error = %failure.error, retry = retry + 1, delay_ms = delay.as_millis() as u64, "LLM call failed, retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    async fn complete_once(&self, body: Bytes, request: &LlmRequest) -> Result<LlmReply, Failure> {
        let response = self
            .send(body, false, request.request_id.as_deref())
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|_| Failure::retriable(LlmError::Stream(CUT.into())))?;
        parse_completion(&bytes, &request.model)
    }

    /// One streamed attempt, up to and including its first text chunk.
    async fn start_stream(&self, body: Bytes, request: &LlmRequest) -> Result<LlmStream, Failure> {
        let response = self.send(body, true, request.request_id.as_deref()).await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // A server that ignored `stream: true` and answered whole.
            let bytes = response
                .bytes()
                .await
                .map_err(|_| Failure::retriable(LlmError::Stream(CUT.into())))?;
            let reply = parse_completion(&bytes, &request.model)?;
            return Ok(stream::iter(reply_chunks(reply).into_iter().map(Ok)).boxed());
        }
        let secret = self.secret().map(str::to_owned);
        let mut chunks = chunk_stream(response.bytes_stream(), secret);
        // The first token is the first text: chunks before it (the model name, an
        // empty role delta) are held back, under the same time limit.
        let mut held = Vec::new();
        loop {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    let text = matches!(chunk, LlmChunk::Delta(_));
                    held.push(chunk);
                    if text {
                        break;
                    }
                }
                None => return Ok(stream::iter(held.into_iter().map(Ok)).boxed()),
                // Nothing reached the caller yet, so a cut stream may be retried.
                Some(Err(LlmError::Stream(m))) if m == CUT => {
                    return Err(Failure::retriable(LlmError::Stream(m)))
                }
                Some(Err(e)) => return Err(Failure::fatal(e)),
            }
        }
        Ok(stream::iter(held.into_iter().map(Ok)).chain(chunks).boxed())
    }
}

fn parse_completion(bytes: &[u8], model: &str) -> Result<LlmReply, Failure> {
    serde_json::from_slice::<WireCompletion>(bytes)
        .map_err(|e| Failure::fatal(LlmError::Stream(format!("malformed reply: {e}"))))?
        .into_reply(model)
        .ok_or_else(|| Failure::fatal(LlmError::Stream("malformed reply: no choices".into())))
}

/// A whole reply as the chunks a stream would have carried.
fn reply_chunks(reply: LlmReply) -> Vec<LlmChunk> {
    let mut chunks = vec![LlmChunk::Model(reply.model)];
    if !reply.content.is_empty() {
        chunks.push(LlmChunk::Delta(reply.content));
    }
    chunks.extend(reply.finish_reason.map(LlmChunk::Finish));
    chunks.extend(reply.usage.map(LlmChunk::Usage));
    chunks
}

/// Reads at most `limit` bytes of a body, ignoring read errors.
async fn read_limited(response: Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(Ok(bytes)) = body.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Applies the idle and total limits to the rest of a stream; the first error ends it.
fn guard(inner: LlmStream, idle: std::time::Duration, deadline: Instant) -> LlmStream {
    stream::unfold(Some(inner), move |state| async move {
        let mut inner = state?;
        let limit = (Instant::now() + idle).min(deadline);
        match timeout_at(limit, inner.next()).await {
            Err(_) => Some((Err(LlmError::Timeout(TimeoutKind::Total)), None)),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(inner))),
        }
    })
    .boxed()
}

fn encode(request: &LlmRequest, stream: bool) -> Result<Bytes, LlmError> {
    request_body(request, stream)
        .map(Bytes::from)
        .map_err(|e| LlmError::BadRequest(format!("cannot encode the request: {e}")))
}

#[async_trait]
impl LlmClient for OpenAiClient {
    #[tracing::instrument(skip_all, fields(model = %request.model, request_id = request.request_id.as_deref().unwrap_or("")))]
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        let inner = &*self.inner;
        let deadline = Instant::now() + inner.config.total_timeout;
        let body = encode(&request, false)?;
        let request = &request;
        inner
            .retrying(deadline, || {
                let body = body.clone();
                async move {
                    match timeout_at(deadline, inner.complete_once(body, request)).await {
                        Ok(result) => result,
                        Err(_) => Err(Failure::fatal(LlmError::Timeout(TimeoutKind::Total))),
                    }
                }
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(model = %request.model, request_id = request.request_id.as_deref().unwrap_or("")))]
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let inner = &*self.inner;
        let config = &inner.config;
        let deadline = Instant::now() + config.total_timeout;
        let body = encode(&request, true)?;
        let request = &request;
        let started = inner
            .retrying(deadline, || {
                let body = body.clone();
                async move {
                    let first_token = (Instant::now() + config.first_token_timeout).min(deadline);
                    match timeout_at(first_token, inner.start_stream(body, request)).await {
                        Ok(result) => result,
                        Err(_) if first_token >= deadline => {
                            Err(Failure::fatal(LlmError::Timeout(TimeoutKind::Total)))
                        }
                        Err(_) => Err(Failure::fatal(LlmError::Timeout(TimeoutKind::FirstToken))),
                    }
                }
            })
            .await?;
        Ok(guard(started, config.idle_timeout, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_http() {
        for bad in ["", "localhost:8080", "ftp://x/v1", "http://"] {
            assert!(OpenAiClient::new(OpenAiConfig::new(bad)).is_err(), "{bad}");
        }
        let client = OpenAiClient::new(OpenAiConfig::new("http://localhost:8080/v1/")).unwrap();
        assert_eq!(
            client.endpoint().as_str(),
            "http://localhost:8080/v1/chat/completions"
        );
    }

    #[test]
    fn a_key_with_a_newline_is_refused() {
        let config = OpenAiConfig::new("http://x/v1").with_api_key("a\nb");
        assert!(matches!(
            OpenAiClient::new(config),
            Err(OpenAiConfigError::ApiKey)
        ));
    }
}
