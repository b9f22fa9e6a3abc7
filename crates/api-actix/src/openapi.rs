//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the DTOs' schemas, served at `/api-docs/openapi.json`, printed by
//! `chat-service openapi`, and browsed with the Swagger UI vendored into the binary
//! at `/docs/`.

mod conventions;

use crate::dto::{
    ChatDto, ChatPage, ChatRequest, MessageDto, MessagePage, MessageRequest, SettingsDto,
    SettingsRequest, TurnDto, TurnEvent, TurnProblem, UsageDto,
};
use crate::error::{FieldError, Problem};
use crate::routes::{self, health};
use actix_web::{http::header, web, HttpResponse};
use std::sync::OnceLock;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const SPEC_PATH: &str = "/api-docs/openapi.json";

/// The API description.
#[derive(OpenApi, Debug)]
#[openapi(
    info(
        title = "chat-service",
        description = "LLM chat sessions over HTTP: chats, their messages, replies from an \
            OpenAI-compatible provider (JSON or Server-Sent Events). Every route under \
            `/api/v1` needs `Authorization: Bearer <JWT>`. Errors are \
            `application/problem+json` (RFC 9457); every response carries `X-Request-Id` \
            (the client's `X-Request-Id` when it sends a sane one, else the trace id of its \
            W3C `traceparent`; neither header is ever refused). Request bodies are one JSON \
            value with exactly the documented fields. Values of a string `format` this \
            document does not define (`cursor`) are opaque: use the ones the service returned."
    ),
    paths(
        routes::chats::create, routes::chats::list, routes::chats::search,
        routes::chats::get, routes::chats::update, routes::chats::delete, routes::fork::fork,
        routes::messages::send, routes::messages::list, routes::messages::get,
        routes::messages::edit, routes::messages::delete, routes::messages::regenerate,
        routes::messages::cancel, routes::stream::follow, routes::models::list, routes::usage::report,
        routes::data::search, routes::data::export, routes::data::erase_me,
        health::healthz, health::readyz, crate::metrics::handler, spec,
        crate::playground::playground,
    ),
    components(schemas(
        ChatDto, ChatPage, ChatRequest, SettingsDto, SettingsRequest, MessageDto, MessagePage,
        MessageRequest, TurnDto, TurnEvent, TurnProblem, UsageDto, Problem, FieldError,
        crate::dto::BranchDto, crate::dto::SendRequest, crate::dto::ChatUpdateRequest,
        crate::dto::ForkRequest,
        health::Health, health::Readiness, health::NotReady, health::CheckState,
        crate::dto_data::SearchPage, crate::dto_data::SearchHitDto, crate::dto_data::HitChatDto,
        crate::dto_data::SnippetDto, crate::dto_data::HighlightDto, crate::dto_data::ExportLine, crate::dto_data::ExportedMessageDto,
        routes::models::ModelDto, routes::models::ModelListDto,
        crate::dto::usage::UsageReportDto, crate::dto::usage::UsageGroupDto,
        crate::dto::usage::UsageTotalsDto, crate::dto::usage::UsagePurposeDto,
        crate::dto::usage::UsageGroupByDto,
    )),
    tags(
        (name = "chats", description = "The caller's chats"),
        (name = "messages", description = "Messages of a chat, sends and replies, search"),
        (name = "data", description = "The caller's own data: export and erasure"),
        (name = "models", description = "The models a chat may use"),
        (name = "usage", description = "The caller's token usage (quotas are checked against it)"),
        (name = "operations", description = "Health, readiness, metrics, this document and the playground page (no token)"),
    )
)]
pub struct ApiDoc;

/// The document: what the annotations generate, with the [`conventions`] applied.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        conventions::apply(&mut doc);
        doc
    })
}

/// The document as pretty-printed JSON.
pub fn json() -> String {
    serde_json::to_string_pretty(document())
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"))
}

/// The rendered document, built once at start.
#[derive(Debug, Clone)]
pub struct SpecJson(pub String);

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", description = "The OpenAPI 3.1 document")))]
pub async fn spec(doc: web::Data<SpecJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// `/docs` → `/docs/`, where the UI's relative links resolve.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// The Swagger UI at `/docs/`, reading [`SPEC_PATH`]; its files are compiled into
/// the binary (nothing is fetched at build or run time).
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::from(SPEC_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_the_bearer_scheme() {
        let doc: serde_json::Value = serde_json::from_str(&json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let scheme = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        assert_eq!(scheme["bearerFormat"], "JWT");
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_owned());
            }
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{ids:?}");
    }

    #[test]
    fn errors_are_problem_json_and_sends_can_stream() {
        let doc: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let send = &doc["paths"]["/api/v1/messages"]["post"]["responses"];
        assert!(send["201"]["content"]["text/event-stream"].is_object());
        assert!(send["422"]["content"]["application/problem+json"].is_object());
        assert!(send["429"]["headers"]["Retry-After"].is_object());
        assert!(send["401"]["headers"]["WWW-Authenticate"].is_object());
        let health = &doc["paths"]["/healthz"]["get"]["responses"];
        assert!(health["429"].is_null(), "no token, no rate limit");
    }
}
