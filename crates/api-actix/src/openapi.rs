//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the DTOs' schemas, served at `/api-docs/openapi.json`, printed by
//! `chat-service openapi`, and browsed with the Swagger UI vendored into the binary
//! at `/docs/`.

use crate::dto::{
    ChatDto, ChatPage, ChatRequest, MessageDto, MessagePage, MessageRequest, SettingsDto, TurnDto,
    UsageDto,
};
use crate::error::{FieldError, Problem};
use crate::routes::{self, health};
use actix_web::{http::header, web, HttpResponse};
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr};
use utoipa::{Modify, OpenApi};
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
            `application/problem+json` (RFC 9457); every response carries `X-Request-Id`."
    ),
    paths(
        routes::chats::create, routes::chats::list, routes::chats::search,
        routes::chats::get, routes::chats::update, routes::chats::delete,
        routes::messages::send, routes::messages::list, routes::messages::get,
        routes::messages::edit, routes::messages::delete, routes::messages::regenerate,
        routes::messages::cancel,
        health::healthz, health::readyz, crate::metrics::handler, spec,
    ),
    components(schemas(
        ChatDto, ChatPage, ChatRequest, SettingsDto, MessageDto, MessagePage, MessageRequest,
        TurnDto, UsageDto, Problem, FieldError, health::Readiness, health::Check,
    )),
    modifiers(&Conventions),
    tags(
        (name = "chats", description = "The caller's chats"),
        (name = "messages", description = "Messages of a chat, sends and replies"),
        (name = "operations", description = "Health, readiness, metrics and this document (no token)"),
    )
)]
pub struct ApiDoc;

/// The document as pretty-printed JSON.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
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

/// What the annotations cannot say per handler: the bearer scheme, unique operation
/// ids, `application/problem+json` error bodies with their headers, the 429 every
/// authenticated route can answer, and the event-stream form of sends.
#[derive(Debug)]
struct Conventions;

fn string_header(description: &str) -> Header {
    let mut h = Header::new(Object::with_type(Type::String));
    h.description = Some(description.to_owned());
    h
}

fn problem_response(description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(
        "application/problem+json".to_owned(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    r
}

fn adjust(op: &mut Operation) {
    let tag = op
        .tags
        .as_ref()
        .and_then(|t| t.first().cloned())
        .unwrap_or_default();
    if let Some(id) = &op.operation_id {
        op.operation_id = Some(format!("{tag}_{id}"));
    }
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let responses = &mut op.responses.responses;
    if secured {
        responses.entry("429".to_owned()).or_insert_with(|| {
            RefOr::T(problem_response(
                "Rate limit reached for this user; see Retry-After",
            ))
        });
    }
    let streams = matches!(
        op.operation_id.as_deref(),
        Some("messages_send" | "messages_regenerate")
    );
    for (status, response) in responses.iter_mut() {
        let RefOr::T(r) = response else { continue };
        let code: u16 = status.parse().unwrap_or(0);
        if code >= 400 {
            if let Some(c) = r.content.shift_remove("application/json") {
                r.content.insert("application/problem+json".to_owned(), c);
            }
            r.headers.insert(
                "X-Request-Id".to_owned(),
                string_header("The request id, also in the body's requestId"),
            );
        }
        match code {
            401 => {
                r.headers.insert(
                    "WWW-Authenticate".to_owned(),
                    string_header("Bearer realm=\"chat-service\", error=\"invalid_token\""),
                );
            }
            409 | 429 | 503 => {
                r.headers.insert(
                    "Retry-After".to_owned(),
                    string_header("Seconds to wait before trying again"),
                );
            }
            201 if streams => {
                let mut c = Content::new(Some(Object::with_type(Type::String)));
                c.example = Some(serde_json::json!(
                    "event: message\ndata: {…}\n\nevent: delta\ndata: {\"content\":\"Hel\"}\n\nevent: reply\ndata: {…}\n\n"
                ));
                r.content.insert("text/event-stream".to_owned(), c);
            }
            201 => {
                r.headers
                    .insert("Location".to_owned(), string_header("The created resource"));
            }
            _ => {}
        }
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                adjust(op);
            }
        }
    }
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
        let doc = ApiDoc::openapi();
        let mut ids = Vec::new();
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.post, &item.put, &item.delete]
                .into_iter()
                .flatten()
            {
                ids.push(op.operation_id.clone().unwrap());
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
