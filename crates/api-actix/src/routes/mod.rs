//! The HTTP routes: `/api/v1/chats`, `/api/v1/messages`, health and the fallbacks.

pub mod chats;
pub mod health;
pub mod messages;
mod turn;

use crate::error::ApiError;
use actix_web::{web, HttpResponse};

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Fallback for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every API route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .service(
                resource("/chats")
                    .route(web::post().to(chats::create))
                    .route(web::get().to(chats::list)),
            )
            .service(resource("/chats/search").route(web::get().to(chats::search)))
            .service(
                resource("/chats/{id}")
                    .route(web::get().to(chats::get))
                    .route(web::put().to(chats::update))
                    .route(web::delete().to(chats::delete)),
            )
            .service(
                resource("/messages")
                    .route(web::post().to(messages::send))
                    .route(web::get().to(messages::list)),
            )
            .service(
                resource("/messages/{id}")
                    .route(web::get().to(messages::get))
                    .route(web::put().to(messages::edit))
                    .route(web::delete().to(messages::delete)),
            )
            .service(
                resource("/messages/{id}/regenerate").route(web::post().to(messages::regenerate)),
            )
            .service(resource("/messages/{id}/cancel").route(web::post().to(messages::cancel)))
            .default_service(web::to(not_found)),
    )
    .service(resource("/healthz").route(web::get().to(health::healthz)))
    .service(resource("/readyz").route(web::get().to(health::readyz)));
}
