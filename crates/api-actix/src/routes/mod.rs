//! The HTTP routes: `/api/v1/chats`, `/api/v1/messages`, `/api/v1/models`, `/api/v1/usage`, operations
//! (health, metrics, API docs) and the fallbacks, all from one table.

pub mod chats;
pub mod data;
pub mod fork;
pub mod health;
pub mod messages;
pub mod models;
pub mod sse;
pub mod stream;
mod turn;
pub mod usage;

use crate::error::ApiError;
use actix_web::http::Method;
use actix_web::{guard, web, HttpResponse, Route};

/// Fallback for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A resource answering the `allowed` methods (an `Allow` value), and 405 with that
/// `Allow` header to any other.
fn resource(path: &str, allowed: String) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || {
        let allow = allowed.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
    }))
}

/// The `Allow` value for these methods: HEAD wherever GET is.
fn allow_value(methods: &[Method]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for m in methods {
        names.push(m.as_str());
        if *m == Method::GET {
            names.push(Method::HEAD.as_str());
        }
    }
    names.join(", ")
}

/// One route the router serves: method, path pattern, handler.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern, as in the OpenAPI document.
    pub path: &'static str,
    handler: fn() -> Route,
}

const fn ep(method: Method, path: &'static str, handler: fn() -> Route) -> Endpoint {
    Endpoint {
        method,
        path,
        handler,
    }
}

/// Every route the router serves, in matching order: the router is built from this
/// table, and a test checks it against the OpenAPI document both ways. (The files of
/// the Swagger UI under `/docs/` and of the playground under `/playground/` are the
/// only things served outside it.)
pub const ENDPOINTS: &[Endpoint] = &[
    ep(Method::POST, "/api/v1/chats", || web::to(chats::create)),
    ep(Method::GET, "/api/v1/chats", || web::to(chats::list)),
    ep(Method::GET, "/api/v1/chats/search", || {
        web::to(chats::search)
    }),
    ep(Method::GET, "/api/v1/chats/{id}", || web::to(chats::get)),
    ep(Method::PUT, "/api/v1/chats/{id}", || web::to(chats::update)),
    ep(Method::POST, "/api/v1/chats/{id}/fork", || {
        web::to(fork::fork)
    }),
    ep(Method::DELETE, "/api/v1/chats/{id}", || {
        web::to(chats::delete)
    }),
    ep(Method::POST, "/api/v1/messages", || web::to(messages::send)),
    ep(Method::GET, "/api/v1/messages", || web::to(messages::list)),
    // Before `/api/v1/messages/{id}`, which would take `search` for an id.
    ep(Method::GET, "/api/v1/messages/search", || {
        web::to(data::search)
    }),
    ep(Method::GET, "/api/v1/messages/{id}", || {
        web::to(messages::get)
    }),
    ep(Method::PUT, "/api/v1/messages/{id}", || {
        web::to(messages::edit)
    }),
    ep(Method::DELETE, "/api/v1/messages/{id}", || {
        web::to(messages::delete)
    }),
    ep(Method::POST, "/api/v1/messages/{id}/regenerate", || {
        web::to(messages::regenerate)
    }),
    ep(Method::POST, "/api/v1/messages/{id}/cancel", || {
        web::to(messages::cancel)
    }),
    ep(Method::GET, "/api/v1/messages/{id}/stream", || {
        web::to(stream::follow)
    }),
    ep(Method::GET, "/api/v1/export", || web::to(data::export)),
    ep(Method::DELETE, "/api/v1/me", || web::to(data::erase_me)),
    ep(Method::GET, "/api/v1/models", || web::to(models::list)),
    ep(Method::GET, "/api/v1/usage", || web::to(usage::report)),
    ep(Method::GET, "/healthz", || web::to(health::healthz)),
    ep(Method::GET, "/readyz", || web::to(health::readyz)),
    ep(Method::GET, "/metrics", || web::to(crate::metrics::handler)),
    ep(Method::GET, crate::openapi::SPEC_PATH, || {
        web::to(crate::openapi::spec)
    }),
    ep(Method::GET, "/", || web::to(crate::playground::playground)),
];

/// Registers every route of [`ENDPOINTS`] (one resource per path; `HEAD` served by the
/// path's GET handler, the dispatcher leaving out the body; 405 with `Allow` for other
/// methods), the Swagger UI and the playground's files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = Vec::new();
    for e in ENDPOINTS {
        if !paths.contains(&e.path) {
            paths.push(e.path);
        }
    }
    for path in paths {
        let endpoints: Vec<&Endpoint> = ENDPOINTS.iter().filter(|e| e.path == path).collect();
        let methods: Vec<Method> = endpoints.iter().map(|e| e.method.clone()).collect();
        let mut r = resource(path, allow_value(&methods));
        for e in endpoints {
            r = if e.method == Method::GET {
                r.route((e.handler)().guard(guard::Any(guard::Get()).or(guard::Head())))
            } else {
                r.route((e.handler)().method(e.method.clone()))
            };
        }
        cfg.service(r);
    }
    cfg.service(
        resource("/docs", allow_value(&[Method::GET])).route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(crate::openapi::docs_redirect),
        ),
    )
    .service(crate::openapi::swagger_ui())
    .service(
        resource(crate::playground::ASSET_PATH, allow_value(&[Method::GET])).route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(crate::playground::asset),
        ),
    );
}
