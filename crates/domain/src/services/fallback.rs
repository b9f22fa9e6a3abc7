//! Fallbacks before the first token: an `LlmClient` decorator that asks a model's
//! fallbacks, in order, when it fails before any text has been produced, and reports
//! which model answered. Once a token has been passed on, a failure ends the reply.

use crate::model::ModelName;
use crate::ports::{
    LlmChunk, LlmClient, LlmError, LlmReply, LlmRequest, LlmStream, ModelCatalog, TimeoutKind,
};
use async_trait::async_trait;
use futures::{stream, StreamExt};
use std::sync::Arc;

/// Whether a failure before the first token is worth trying another model for: the
/// provider is throttling (429), failing (5xx), unreachable, or did not start
/// answering in time. A request the provider refuses (400, 401) or a broken stream
/// would fail the same way elsewhere, and a whole-reply timeout leaves no time.
pub fn falls_back(error: &LlmError) -> bool {
    matches!(
        error,
        LlmError::RateLimited { .. }
            | LlmError::Upstream { .. }
            | LlmError::Timeout(TimeoutKind::Connect | TimeoutKind::FirstToken)
    )
}

/// Wraps the client that reaches the providers. For a request naming model `m`, it
/// tries `m`, then each of `m`'s listed fallbacks, moving on only when the attempt
/// fails with an error [`falls_back`] accepts before its first text chunk. Each
/// attempt's `max_tokens` is bounded by that model's ceiling.
///
/// The stream it returns starts with `LlmChunk::Model(name)`: the catalog name of the
/// model that answered (the provider's own `Model` chunks are dropped), so the reply
/// records that model.
pub struct FallbackLlm {
    inner: Arc<dyn LlmClient>,
    catalog: Arc<dyn ModelCatalog>,
}

impl std::fmt::Debug for FallbackLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackLlm").finish_non_exhaustive()
    }
}

impl FallbackLlm {
    /// The decorator over `inner`, with fallbacks from `catalog`.
    pub fn new(inner: Arc<dyn LlmClient>, catalog: Arc<dyn ModelCatalog>) -> Self {
        Self { inner, catalog }
    }

    /// The requests to try, in order: the one asked for, then one per listed fallback.
    fn attempts(&self, request: &LlmRequest) -> Vec<LlmRequest> {
        let list = self.catalog.models();
        let Some(first) = list.find(&request.model) else {
            return vec![request.clone()];
        };
        let mut out = vec![request.clone()];
        out[0].max_tokens = request.max_tokens.map(|n| n.min(first.max_output_tokens()));
        for name in first.fallbacks().iter().map(ModelName::as_str) {
            let Some(model) = list.find(name) else {
                continue;
            };
            out.push(LlmRequest {
                model: name.to_owned(),
                max_tokens: request.max_tokens.map(|n| n.min(model.max_output_tokens())),
                ..request.clone()
            });
        }
        out
    }

    /// Starts one attempt and waits for its first text chunk (or its end), holding
    /// back what comes before it, so that a failure up to then can still fall back.
    async fn start(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let model = request.model.clone();
        let mut upstream = self.inner.stream(request).await?;
        let mut held = vec![LlmChunk::Model(model)];
        loop {
            match upstream.next().await {
                Some(Err(e)) => return Err(e),
                Some(Ok(LlmChunk::Model(_))) => {}
                Some(Ok(chunk)) => {
                    let text = matches!(chunk, LlmChunk::Delta(_));
                    held.push(chunk);
                    if text {
                        break;
                    }
                }
                None => return Ok(stream::iter(held.into_iter().map(Ok)).boxed()),
            }
        }
        let rest = upstream.filter(|item| {
            let keep = !matches!(item, Ok(LlmChunk::Model(_)));
            async move { keep }
        });
        Ok(stream::iter(held.into_iter().map(Ok)).chain(rest).boxed())
    }
}

#[async_trait]
impl LlmClient for FallbackLlm {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        let attempts = self.attempts(&request);
        let last = attempts.len().saturating_sub(1);
        let mut outcome = Err(LlmError::Upstream { status: None });
        for (i, attempt) in attempts.into_iter().enumerate() {
            let model = attempt.model.clone();
            outcome = self.inner.complete(attempt).await.map(|mut reply| {
                reply.model = model.clone();
                reply
            });
            match &outcome {
                Err(e) if falls_back(e) && i < last => {
                    tracing::warn!(%model, error = %e, "model failed; trying its next fallback");
                }
                _ => break,
            }
        }
        outcome
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let attempts = self.attempts(&request);
        let last = attempts.len().saturating_sub(1);
        let mut outcome = Err(LlmError::Upstream { status: None });
        for (i, attempt) in attempts.into_iter().enumerate() {
            let model = attempt.model.clone();
            outcome = self.start(attempt).await;
            match &outcome {
                Err(e) if falls_back(e) && i < last => {
                    tracing::warn!(%model, error = %e, "model failed before its first token; trying its next fallback");
                }
                _ => break,
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MaxTokens, ModelInfo, ModelList, ProviderName, Usage};
    use crate::ports::{MockLlmClient, PromptMessage, StaticCatalog};
    use crate::Role;
    use futures::executor::block_on;
    use std::sync::Mutex;

    fn info(name: &str, fallbacks: &[&str]) -> ModelInfo {
        ModelInfo::new(
            ModelName::parse(name).unwrap(),
            ProviderName::parse("p").unwrap(),
        )
        .with_fallbacks(fallbacks.iter().map(|f| ModelName::parse(f).unwrap()))
    }

    fn catalog() -> Arc<dyn ModelCatalog> {
        let list = ModelList::new(
            vec![
                info("main", &["spare", "gone", "last"]),
                info("spare", &["main"]).with_max_output_tokens(MaxTokens::new(50).unwrap()),
                info("last", &[]),
            ],
            None,
        )
        .unwrap();
        Arc::new(StaticCatalog::new(list))
    }

    fn request(model: &str) -> LlmRequest {
        LlmRequest {
            model: model.into(),
            messages: vec![PromptMessage {
                role: Role::User,
                content: "hi".into(),
            }],
            temperature: None,
            max_tokens: Some(100),
            request_id: None,
        }
    }

    type Script = Vec<Result<Vec<Result<LlmChunk, LlmError>>, LlmError>>;
    type Asked = Arc<Mutex<Vec<(String, Option<u32>)>>>;

    /// A mock answering each `stream` call with the next scripted outcome, recording the models asked.
    fn scripted(script: Script) -> (MockLlmClient, Asked) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let script = Mutex::new(script.into_iter());
        let log = asked.clone();
        let mut mock = MockLlmClient::new();
        mock.expect_stream().returning(move |req| {
            log.lock()
                .unwrap()
                .push((req.model.clone(), req.max_tokens));
            match script.lock().unwrap().next() {
                Some(Ok(items)) => Ok(stream::iter(items).boxed()),
                Some(Err(e)) => Err(e),
                None => panic!("called more often than scripted"),
            }
        });
        (mock, asked)
    }

    fn ok_reply(text: &str) -> Vec<Result<LlmChunk, LlmError>> {
        vec![
            Ok(LlmChunk::Model("provider-name-2024".into())),
            Ok(LlmChunk::Delta(text.into())),
            Ok(LlmChunk::Usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
            })),
        ]
    }

    fn run(llm: &FallbackLlm, model: &str) -> Result<Vec<Result<LlmChunk, LlmError>>, LlmError> {
        block_on(async {
            let s = llm.stream(request(model)).await?;
            Ok(s.collect::<Vec<_>>().await)
        })
    }

    #[test]
    fn worthy_failures_before_the_first_token_move_to_the_next_listed_fallback() {
        for first in [
            LlmError::RateLimited { retry_after: None },
            LlmError::Upstream { status: Some(503) },
            LlmError::Upstream { status: None },
            LlmError::Timeout(TimeoutKind::Connect),
            LlmError::Timeout(TimeoutKind::FirstToken),
        ] {
            let (mock, asked) = scripted(vec![Err(first.clone()), Ok(ok_reply("from spare"))]);
            let llm = FallbackLlm::new(Arc::new(mock), catalog());
            let items = run(&llm, "main").unwrap();
            assert_eq!(
                items[0],
                Ok(LlmChunk::Model("spare".into())),
                "after {first:?}"
            );
            assert_eq!(items[1], Ok(LlmChunk::Delta("from spare".into())));
            assert!(
                !items
                    .iter()
                    .any(|i| i == &Ok(LlmChunk::Model("provider-name-2024".into()))),
                "the provider's own model name is dropped"
            );
            // The fallback's ceiling (50) bounds its max_tokens; the first kept 100.
            assert_eq!(
                *asked.lock().unwrap(),
                [("main".into(), Some(100)), ("spare".into(), Some(50))]
            );
        }
    }

    #[test]
    fn an_error_in_the_stream_before_any_text_also_falls_back() {
        let before_text = vec![
            Ok(LlmChunk::Model("x".into())),
            Err(LlmError::Timeout(TimeoutKind::FirstToken)),
        ];
        let (mock, asked) = scripted(vec![
            Ok(before_text),
            Err(LlmError::RateLimited { retry_after: None }),
            Ok(ok_reply("last one")),
        ]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        let items = run(&llm, "main").unwrap();
        assert_eq!(items[0], Ok(LlmChunk::Model("last".into())));
        // "gone" is not listed: skipped.
        let models: Vec<String> = asked.lock().unwrap().iter().map(|a| a.0.clone()).collect();
        assert_eq!(models, ["main", "spare", "last"]);
    }

    #[test]
    fn a_failure_after_the_first_token_never_falls_back() {
        let broken = vec![
            Ok(LlmChunk::Delta("half".into())),
            Err(LlmError::Upstream { status: None }),
        ];
        let (mock, asked) = scripted(vec![Ok(broken)]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        let items = run(&llm, "main").unwrap();
        assert_eq!(
            items,
            [
                Ok(LlmChunk::Model("main".into())),
                Ok(LlmChunk::Delta("half".into())),
                Err(LlmError::Upstream { status: None }),
            ]
        );
        assert_eq!(asked.lock().unwrap().len(), 1);
    }

    #[test]
    fn other_failures_and_the_last_model_end_the_reply() {
        for e in [
            LlmError::Unauthorized,
            LlmError::BadRequest("too long".into()),
            LlmError::Stream("malformed".into()),
            LlmError::Timeout(TimeoutKind::Total),
        ] {
            let (mock, asked) = scripted(vec![Err(e.clone())]);
            let llm = FallbackLlm::new(Arc::new(mock), catalog());
            assert_eq!(run(&llm, "main").err(), Some(e));
            assert_eq!(asked.lock().unwrap().len(), 1);
        }
        // A model without fallbacks: its failure is the answer.
        let (mock, _) = scripted(vec![Err(LlmError::Upstream { status: Some(500) })]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        assert_eq!(
            run(&llm, "last").err(),
            Some(LlmError::Upstream { status: Some(500) })
        );
        // Every model failing: the last failure is the answer.
        let (mock, asked) = scripted(vec![
            Err(LlmError::Upstream { status: Some(500) }),
            Err(LlmError::Upstream { status: Some(502) }),
            Err(LlmError::RateLimited { retry_after: None }),
        ]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        assert_eq!(
            run(&llm, "main").err(),
            Some(LlmError::RateLimited { retry_after: None })
        );
        assert_eq!(asked.lock().unwrap().len(), 3);
    }

    #[test]
    fn an_unlisted_model_is_passed_on_as_asked() {
        let (mock, asked) = scripted(vec![Ok(ok_reply("x"))]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        let items = run(&llm, "unlisted").unwrap();
        assert_eq!(items[0], Ok(LlmChunk::Model("unlisted".into())));
        assert_eq!(*asked.lock().unwrap(), [("unlisted".into(), Some(100))]);
    }

    #[test]
    fn an_empty_reply_still_names_its_model() {
        let (mock, _) = scripted(vec![Ok(vec![Ok(LlmChunk::Finish("stop".into()))])]);
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        assert_eq!(
            run(&llm, "main").unwrap(),
            [
                Ok(LlmChunk::Model("main".into())),
                Ok(LlmChunk::Finish("stop".into()))
            ]
        );
    }

    #[test]
    fn whole_replies_fall_back_too_and_name_the_answering_model() {
        let mut mock = MockLlmClient::new();
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        mock.expect_complete().returning(move |req| {
            *c.lock().unwrap() += 1;
            if req.model == "main" {
                Err(LlmError::Upstream { status: Some(500) })
            } else {
                Ok(LlmReply {
                    content: "ok".into(),
                    model: "provider-says".into(),
                    usage: None,
                    finish_reason: None,
                })
            }
        });
        let llm = FallbackLlm::new(Arc::new(mock), catalog());
        let reply = block_on(llm.complete(request("main"))).unwrap();
        assert_eq!(reply.model, "spare");
        assert_eq!(*calls.lock().unwrap(), 2);
    }
}
