//! Model discovery at the wire: `GET /models` read into the catalog, and a provider
//! that stops answering (or answers nonsense) keeps its last list.

use domain::model::{ModelName, ProviderName};
use domain::ports::ModelCatalog;
use infra_llm::{
    ApiKey, CatalogConfig, Discovery, DiscoveryError, ModelLister, ProviderCatalog, ProviderModels,
};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn local() -> ProviderName {
    ProviderName::parse("local").unwrap()
}

fn catalog() -> Arc<ProviderCatalog> {
    Arc::new(ProviderCatalog::new(CatalogConfig::new(vec![
        ProviderModels {
            provider: local(),
            fixed: vec![],
            discover: true,
        },
    ])))
}

fn lister(base: &str) -> ModelLister {
    ModelLister::new(
        base,
        ApiKey::new("sk-local").as_ref(),
        Duration::from_millis(500),
    )
    .unwrap()
}

fn list_body(ids: &[&str]) -> serde_json::Value {
    let data: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "x"}))
        .collect();
    serde_json::json!({"object": "list", "data": data})
}

#[tokio::test]
async fn the_list_is_read_with_the_key_and_bad_names_are_left_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("authorization", "Bearer sk-local"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "object": "list",
            "data": [{"id": "llama3.1:8b"}, {"id": "has space"}, {"id": 42}, {"id": "qwen2.5"}, {"id": "llama3.1:8b"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let names = lister(&format!("{}/v1/", server.uri()))
        .list()
        .await
        .unwrap();
    let names: Vec<_> = names.iter().map(ModelName::as_str).collect();
    assert_eq!(names, ["llama3.1:8b", "qwen2.5"]);
}

#[tokio::test]
async fn a_provider_that_stops_answering_keeps_its_last_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(&["a", "b"])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let catalog = catalog();
    let discovery = Discovery::new(
        catalog.clone(),
        vec![(local(), lister(&server.uri()))],
        Duration::from_secs(300),
    );
    let report = discovery.refresh().await;
    assert_eq!(report[0].1, Ok(2));
    assert_eq!(catalog.models().choices(), ["a", "b"]);
    assert_eq!(
        catalog.models().find("a").unwrap().provider().as_str(),
        "local"
    );

    // Next: a 500, then nonsense, then an empty list, then nobody at all.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    assert_eq!(
        discovery.refresh().await[0].1,
        Err(DiscoveryError::Status(500))
    );
    assert_eq!(catalog.models().choices(), ["a", "b"]);

    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    assert!(matches!(
        discovery.refresh().await[0].1,
        Err(DiscoveryError::Malformed(_))
    ));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(&[])))
        .mount(&server)
        .await;
    assert_eq!(discovery.refresh().await[0].1, Err(DiscoveryError::Empty));
    assert_eq!(catalog.models().choices(), ["a", "b"]);

    // The provider is gone: connection refused (a port nobody listens on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = Discovery::new(
        catalog.clone(),
        vec![(local(), lister(&format!("http://127.0.0.1:{port}")))],
        Duration::from_secs(300),
    );
    assert!(matches!(
        gone.refresh().await[0].1,
        Err(DiscoveryError::Unreachable(_))
    ));
    assert_eq!(catalog.models().choices(), ["a", "b"]);
}

#[tokio::test]
async fn a_changed_list_replaces_the_old_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(&["a", "b"])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(&["c"])))
        .mount(&server)
        .await;
    let catalog = catalog();
    let discovery = Discovery::new(
        catalog.clone(),
        vec![(local(), lister(&server.uri()))],
        Duration::from_secs(300),
    );
    discovery.refresh().await;
    discovery.refresh().await;
    assert_eq!(catalog.models().choices(), ["c"]);
}

#[tokio::test]
async fn an_oversized_list_is_refused() {
    let server = MockServer::start().await;
    let big = format!(
        "{{\"data\":[{{\"id\":\"{}\"}}]}}",
        "x".repeat(infra_llm::discovery::MAX_BODY_BYTES)
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big))
        .mount(&server)
        .await;
    assert!(matches!(
        lister(&server.uri()).list().await,
        Err(DiscoveryError::Malformed(_))
    ));
}

#[tokio::test]
async fn the_loop_refreshes_until_stopped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(&["late"])))
        .mount(&server)
        .await;
    let catalog = catalog();
    let discovery = Discovery::new(
        catalog.clone(),
        vec![(local(), lister(&server.uri()))],
        Duration::from_millis(20),
    );
    // The start-up read fails: no list yet.
    assert!(discovery.refresh().await[0].1.is_err());
    assert!(catalog.models().choices().is_empty());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(discovery.run(async move {
        let _ = stop_rx.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while catalog.models().choices().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(catalog.models().choices(), ["late"]);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_catalog_keeps_the_ports_contract_as_lists_change() {
    use domain::testing::catalog_contract;
    catalog_contract(&domain::ports::StaticCatalog::default());
    catalog_contract(&ProviderCatalog::new(CatalogConfig::echo()));
    let mut config = CatalogConfig::new(vec![
        ProviderModels {
            provider: ProviderName::parse("cloud").unwrap(),
            fixed: vec![infra_llm::ModelSpec {
                name: ModelName::parse("big").unwrap(),
                settings: infra_llm::ModelSettings {
                    max_output_tokens: None,
                    fallbacks: Some(vec![
                        ModelName::parse("big").unwrap(),
                        ModelName::parse("a").unwrap(),
                    ]),
                },
            }],
            discover: false,
        },
        ProviderModels {
            provider: local(),
            fixed: vec![],
            discover: true,
        },
    ]);
    config.default_model = Some(ModelName::parse("a").unwrap());
    let catalog = ProviderCatalog::new(config);
    catalog_contract(&catalog);
    let names = ["a", "big", "c"].map(|n| ModelName::parse(n).unwrap());
    catalog.set_discovered(&local(), names.to_vec());
    catalog_contract(&catalog);
    assert!(catalog.models().is_default("a"));
    catalog.set_discovered(&local(), vec![]);
    catalog_contract(&catalog);
    // The default is gone with its provider's list: the first listed model stands in.
    assert!(catalog.models().is_default("big"));
}
