//! The HTTP routes of the fake: chat completions (whole and streamed) and the model list.

use crate::config::{FakeLlmConfig, FaultKind};
use crate::faults::FaultPicker;
use crate::reply::{reply_words, ReplyPlan, Step};
use crate::Stats;
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shared state of all workers.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: FakeLlmConfig,
    pub(crate) stats: Arc<Stats>,
    pub(crate) faults: FaultPicker,
    pub(crate) next_id: AtomicU64,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
}

/// The text of a message's content: a string, or the `text` of its parts.
fn text_of(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({"error": {"message": message, "type": kind, "code": kind}});
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(body.to_string())
}

fn authorized(state: &AppState, req: &HttpRequest) -> bool {
    let Some(key) = &state.config.api_key else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|v| v == key)
}

/// `POST /chat/completions` and `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    state.stats.record_request(&body);
    if !authorized(&state, &req) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Incorrect API key provided.",
        );
    }
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("invalid request: {e}"),
            )
        }
    };
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| text_of(&m.content))
        .unwrap_or_default();
    let header = req
        .headers()
        .get("x-fake-fault")
        .and_then(|v| v.to_str().ok());
    let fault = match state.faults.pick(&state.config, header, &last_user) {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &e.to_string(),
            )
        }
    };
    if fault.is_some() {
        state.stats.faults.fetch_add(1, Ordering::Relaxed);
    }
    let config = &state.config;
    match fault {
        Some(FaultKind::RateLimited) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Rate limit reached (fake-llm).",
            );
            if let Ok(v) = header::HeaderValue::from_str(&config.retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Some(FaultKind::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server had an error (fake-llm).",
            )
        }
        Some(FaultKind::Unauthorized) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Incorrect API key provided (fake-llm).",
            )
        }
        Some(FaultKind::BadRequest) => {
            return error(
                StatusCode::BAD_REQUEST,
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens (fake-llm).",
            )
        }
        _ => {}
    }

    let limit = request.max_completion_tokens.or(request.max_tokens);
    let tokens = match limit {
        Some(max) if max < config.reply_tokens => max,
        _ => config.reply_tokens,
    };
    let id = format!(
        "chatcmpl-fake-{}",
        state.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let model = request
        .model
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&config.model);
    let prompt_tokens: usize = request
        .messages
        .iter()
        .map(|m| text_of(&m.content).split_whitespace().count())
        .sum();
    let plan = ReplyPlan {
        id: &id,
        model,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        words: reply_words(&last_user, tokens as usize),
        finish_reason: if tokens < config.reply_tokens {
            "length"
        } else {
            "stop"
        },
        prompt_tokens: prompt_tokens as u64,
        include_usage: config.report_usage
            && request.stream_options.unwrap_or_default().include_usage,
        report_usage: config.report_usage,
        ttft: config.ttft,
        token_gap: match config.tokens_per_sec {
            0 => Duration::ZERO,
            tps => Duration::from_secs(1) / tps,
        },
        stall: config.stall,
    };
    if request.stream {
        streamed(&state, plan.sse_steps(fault))
    } else {
        whole(&state, &plan, fault).await
    }
}

async fn whole(state: &AppState, plan: &ReplyPlan<'_>, fault: Option<FaultKind>) -> HttpResponse {
    if matches!(fault, Some(FaultKind::Stall | FaultKind::StallMid)) {
        tokio::time::sleep(plan.stall).await;
    }
    let wait = plan.generation_time();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let json = plan.json_body();
    match fault {
        Some(FaultKind::Malformed) => {
            state.stats.finished.fetch_add(1, Ordering::Relaxed);
            HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(Bytes::copy_from_slice(&json.as_bytes()[..json.len() / 2]))
        }
        Some(FaultKind::Cut) => {
            let half = Bytes::copy_from_slice(&json.as_bytes()[..json.len() / 2]);
            streamed_with_type(
                state,
                vec![Step::Bytes(half), Step::Abort],
                ContentType::json(),
            )
        }
        _ => {
            state.stats.finished.fetch_add(1, Ordering::Relaxed);
            HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(json)
        }
    }
}

fn streamed(state: &AppState, steps: Vec<Step>) -> HttpResponse {
    streamed_with_type(state, steps, ContentType(mime_event_stream()))
}

fn mime_event_stream() -> actix_web::mime::Mime {
    actix_web::mime::TEXT_EVENT_STREAM
}

/// Counts a stream as finished or dropped (the client went away) when it ends.
struct StreamGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl StreamGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.stats.finished
        } else {
            &self.stats.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn streamed_with_type(
    state: &AppState,
    steps: Vec<Step>,
    content_type: ContentType,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let [Step::Bytes(bytes)] = steps.as_slice() {
        state.stats.finished.fetch_add(1, Ordering::Relaxed);
        return response.body(bytes.clone());
    }
    let guard = StreamGuard {
        stats: state.stats.clone(),
        finished: false,
    };
    let steps: VecDeque<Step> = steps.into();
    let body = futures::stream::unfold((steps, guard), |(mut steps, mut guard)| async move {
        loop {
            match steps.pop_front() {
                None => {
                    guard.finish();
                    return None;
                }
                Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
                Some(Step::Bytes(b)) => return Some((Ok(b), (steps, guard))),
                Some(Step::Abort) => {
                    // Let the bytes before the cut reach the socket first (actix flushes
                    // when the body is pending); then the error drops the connection.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    guard.finish();
                    let err =
                        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fake-llm: cut");
                    return Some((Err(err), (steps, guard)));
                }
            }
        }
    });
    response.streaming(body)
}

/// `GET /models` and `GET /v1/models`.
pub(crate) async fn models(state: web::Data<AppState>) -> HttpResponse {
    let body = serde_json::json!({
        "object": "list",
        "data": [{"id": state.config.model, "object": "model", "created": 0, "owned_by": "fake-llm"}]
    });
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body.to_string())
}

/// `GET /health`.
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}
