//! A metering decorator for the `LlmClient` port: time to first token, tokens per
//! second, tokens used per model, provider errors by kind and open provider streams,
//! measured around any adapter so the domain stays free of metrics. The `model`
//! label only takes the catalog's names (anything else is `other`).

use super::{counter_vec, histogram_vec};
use async_trait::async_trait;
use domain::ports::{
    LlmChunk, LlmClient, LlmError, LlmReply, LlmRequest, LlmStream, ModelCatalog, TimeoutKind,
};
use futures::{Stream, StreamExt};
use prometheus::{HistogramVec, IntCounterVec, IntGauge, Registry};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];
const TPS_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
];

/// The LLM families.
#[derive(Debug, Clone)]
pub(crate) struct LlmMetrics {
    requests: IntCounterVec,
    ttft: HistogramVec,
    tps: HistogramVec,
    tokens: IntCounterVec,
    errors: IntCounterVec,
    streams_active: IntGauge,
}

impl LlmMetrics {
    pub(crate) fn new(r: &Registry) -> prometheus::Result<Self> {
        let streams_active = IntGauge::new(
            "llm_streams_active",
            "Provider reply streams open right now.",
        )?;
        r.register(Box::new(streams_active.clone()))?;
        Ok(Self {
            requests: counter_vec(
                r,
                "llm_requests_total",
                "Provider calls by outcome (ok, error, abandoned).",
                &["model", "outcome"],
            )?,
            ttft: histogram_vec(
                r,
                "llm_time_to_first_token_seconds",
                "Time from the provider call to the first token, in seconds.",
                &["model"],
                TTFT_BUCKETS,
            )?,
            tps: histogram_vec(
                r,
                "llm_tokens_per_second",
                "Completion tokens per second after the first token.",
                &["model"],
                TPS_BUCKETS,
            )?,
            tokens: counter_vec(
                r,
                "llm_tokens_total",
                "Tokens used, by model and kind (prompt, completion).",
                &["model", "kind"],
            )?,
            errors: counter_vec(r, "llm_errors_total", "Provider errors by kind.", &["kind"])?,
            streams_active,
        })
    }

    fn error(&self, model: &str, e: &LlmError) {
        self.errors.with_label_values(&[error_kind(e)]).inc();
        self.requests.with_label_values(&[model, "error"]).inc();
    }

    fn usage(&self, model: &str, usage: &domain::Usage) {
        self.tokens
            .with_label_values(&[model, "prompt"])
            .inc_by(u64::from(usage.prompt_tokens));
        self.tokens
            .with_label_values(&[model, "completion"])
            .inc_by(u64::from(usage.completion_tokens));
    }
}

/// The `model` label of a request: its model when the catalog lists it, else `other`
/// (so callers cannot create series with made-up names).
pub fn model_label(catalog: &dyn ModelCatalog, model: &str) -> String {
    if catalog.models().find(model).is_some() {
        model.to_owned()
    } else {
        "other".to_owned()
    }
}

/// The bounded `kind` label of a provider error.
pub fn error_kind(e: &LlmError) -> &'static str {
    match e {
        LlmError::RateLimited { .. } => "rate_limited",
        LlmError::Unauthorized => "unauthorized",
        LlmError::BadRequest(_) => "bad_request",
        LlmError::Upstream { .. } => "upstream",
        LlmError::Timeout(TimeoutKind::Connect) => "timeout_connect",
        LlmError::Timeout(TimeoutKind::FirstToken) => "timeout_first_token",
        LlmError::Timeout(TimeoutKind::Total) => "timeout_total",
        LlmError::Stream(_) => "stream",
    }
}

/// An `LlmClient` that measures the one it wraps.
pub struct MeteredLlm {
    inner: Arc<dyn LlmClient>,
    metrics: LlmMetrics,
    catalog: Arc<dyn ModelCatalog>,
}

impl std::fmt::Debug for MeteredLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredLlm").finish_non_exhaustive()
    }
}

impl MeteredLlm {
    pub(crate) fn new(
        inner: Arc<dyn LlmClient>,
        metrics: LlmMetrics,
        catalog: Arc<dyn ModelCatalog>,
    ) -> Self {
        Self {
            inner,
            metrics,
            catalog,
        }
    }
}

#[async_trait]
impl LlmClient for MeteredLlm {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        let model = model_label(&*self.catalog, &request.model);
        let started = Instant::now();
        match self.inner.complete(request).await {
            Ok(reply) => {
                let m = &self.metrics;
                m.ttft
                    .with_label_values(&[&model])
                    .observe(started.elapsed().as_secs_f64());
                if let Some(u) = &reply.usage {
                    m.usage(&model, u);
                }
                m.requests.with_label_values(&[&model, "ok"]).inc();
                Ok(reply)
            }
            Err(e) => {
                self.metrics.error(&model, &e);
                Err(e)
            }
        }
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let model = model_label(&*self.catalog, &request.model);
        let started = Instant::now();
        match self.inner.stream(request).await {
            Ok(inner) => {
                Ok(MeteredStream::new(inner, self.metrics.clone(), model, started).boxed())
            }
            Err(e) => {
                self.metrics.error(&model, &e);
                Err(e)
            }
        }
    }
}

/// A provider stream being measured; counted in `llm_streams_active` while it lives.
struct MeteredStream {
    inner: LlmStream,
    metrics: LlmMetrics,
    model: String,
    started: Instant,
    first_token: Option<Instant>,
    usage: Option<domain::Usage>,
    finished: bool,
}

impl MeteredStream {
    fn new(inner: LlmStream, metrics: LlmMetrics, model: String, started: Instant) -> Self {
        metrics.streams_active.inc();
        Self {
            inner,
            metrics,
            model,
            started,
            first_token: None,
            usage: None,
            finished: false,
        }
    }

    fn on_chunk(&mut self, chunk: &LlmChunk) {
        match chunk {
            LlmChunk::Delta(_) if self.first_token.is_none() => {
                let now = Instant::now();
                self.first_token = Some(now);
                self.metrics
                    .ttft
                    .with_label_values(&[&self.model])
                    .observe((now - self.started).as_secs_f64());
            }
            LlmChunk::Usage(u) => self.usage = Some(*u),
            LlmChunk::Model(_) | LlmChunk::Delta(_) | LlmChunk::Finish(_) => {}
        }
    }

    fn on_end(&mut self) {
        self.finished = true;
        let m = &self.metrics;
        let model = &self.model;
        m.requests.with_label_values(&[model, "ok"]).inc();
        let Some(usage) = self.usage else { return };
        m.usage(&self.model, &usage);
        if let Some(first) = self.first_token {
            let secs = first.elapsed().as_secs_f64();
            if secs > 0.0 && usage.completion_tokens > 0 {
                m.tps
                    .with_label_values(&[model])
                    .observe(f64::from(usage.completion_tokens) / secs);
            }
        }
    }
}

impl Stream for MeteredStream {
    type Item = Result<LlmChunk, LlmError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(this.inner.poll_next_unpin(cx));
        match &item {
            Some(Ok(chunk)) => this.on_chunk(chunk),
            Some(Err(e)) => {
                this.finished = true;
                this.metrics.error(&this.model, e);
            }
            None => this.on_end(),
        }
        Poll::Ready(item)
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        self.metrics.streams_active.dec();
        if !self.finished {
            self.metrics
                .requests
                .with_label_values(&[&self.model, "abandoned"])
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::PromptMessage;

    fn request() -> LlmRequest {
        LlmRequest {
            model: "echo".into(),
            messages: vec![PromptMessage {
                role: domain::Role::User,
                content: "one two three".into(),
            }],
            temperature: None,
            max_tokens: None,
            request_id: None,
        }
    }

    fn echo() -> Arc<dyn ModelCatalog> {
        Arc::new(infra_llm::ProviderCatalog::new(
            infra_llm::CatalogConfig::echo(),
        ))
    }

    #[tokio::test]
    async fn an_unlisted_model_is_labelled_other() {
        let r = Registry::new();
        let m = LlmMetrics::new(&r).unwrap();
        let llm = MeteredLlm::new(Arc::new(infra_llm::EchoModel::default()), m, echo());
        let mut req = request();
        req.model = "junk-1".into();
        llm.complete(req).await.unwrap();
        assert_eq!(counter(&r, "llm_requests_total", "other"), 1.0);
        assert_eq!(counter(&r, "llm_requests_total", "junk-1"), 0.0);
    }

    fn counter(r: &Registry, name: &str, label: &str) -> f64 {
        r.gather()
            .iter()
            .filter(|f| f.get_name() == name)
            .flat_map(|f| f.get_metric().to_vec())
            .find(|m| m.get_label().iter().any(|l| l.get_value() == label))
            .map(|m| m.get_counter().get_value())
            .unwrap_or(0.0)
    }

    #[tokio::test]
    async fn a_dropped_stream_is_abandoned_and_no_longer_active() {
        let r = Registry::new();
        let m = LlmMetrics::new(&r).unwrap();
        let llm = MeteredLlm::new(Arc::new(infra_llm::EchoModel::default()), m.clone(), echo());
        let mut s = llm.stream(request()).await.unwrap();
        assert_eq!(m.streams_active.get(), 1);
        let _ = s.next().await;
        drop(s);
        assert_eq!(m.streams_active.get(), 0);
        assert_eq!(counter(&r, "llm_requests_total", "abandoned"), 1.0);
    }

    #[tokio::test]
    async fn whole_replies_count_their_tokens() {
        let r = Registry::new();
        let m = LlmMetrics::new(&r).unwrap();
        let llm = MeteredLlm::new(Arc::new(infra_llm::EchoModel::default()), m, echo());
        let reply = llm.complete(request()).await.unwrap();
        let usage = reply.usage.unwrap();
        assert_eq!(
            counter(&r, "llm_tokens_total", "completion"),
            f64::from(usage.completion_tokens)
        );
        assert_eq!(counter(&r, "llm_requests_total", "ok"), 1.0);
    }
}
