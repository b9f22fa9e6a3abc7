//! The provider router at the wire: each model's requests reach its own provider,
//! with that provider's key.

use crate::helpers::*;
use domain::model::{ModelName, ProviderName};
use domain::ports::{LlmClient, LlmError};
use infra_llm::{
    CatalogConfig, ModelSettings, ModelSpec, OpenAiClient, ProviderCatalog, ProviderModels,
    ProviderRouter,
};
use std::collections::HashMap;
use std::sync::Arc;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(name: &str, models: &[&str]) -> ProviderModels {
    ProviderModels {
        provider: ProviderName::parse(name).unwrap(),
        fixed: models
            .iter()
            .map(|m| ModelSpec {
                name: ModelName::parse(m).unwrap(),
                settings: ModelSettings::default(),
            })
            .collect(),
        discover: false,
    }
}

async fn serving(model: &str, key: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .and(body_partial_json(serde_json::json!({"model": model})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(hello_stream().into_bytes(), "text/event-stream"),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn each_model_goes_to_its_provider() {
    let one = serving("gpt-test", "key-one").await;
    let two = serving("llama", "key-two").await;
    let catalog = Arc::new(ProviderCatalog::new(CatalogConfig::new(vec![
        provider("one", &["gpt-test"]),
        provider("two", &["llama"]),
    ])));
    let mut clients: HashMap<ProviderName, Arc<dyn LlmClient>> = HashMap::new();
    for (name, server, key) in [("one", &one, "key-one"), ("two", &two, "key-two")] {
        let client: OpenAiClient = client(config(&server.uri()).with_api_key(key));
        clients.insert(ProviderName::parse(name).unwrap(), Arc::new(client));
    }
    let router = ProviderRouter::new(catalog, clients);
    let mut req = request("hi");
    let out = drain(router.stream(req.clone()).await.unwrap()).await;
    assert_eq!(out.text, "Hello world");
    req.model = "llama".into();
    let out = drain(router.stream(req.clone()).await.unwrap()).await;
    assert_eq!(out.text, "Hello world");
    req.model = "unknown".into();
    assert!(matches!(
        router.stream(req).await.err(),
        Some(LlmError::BadRequest(_))
    ));
}
