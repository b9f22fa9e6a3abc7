//! `GET /api/v1/models`: the models a caller may use, with their provider, whether
//! each is the default, its output-token ceiling and its fallbacks.

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use domain::{ModelInfo, ModelList};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A model on offer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDto {
    /// The name to put in a chat's `settings.model`.
    #[schema(
        example = "gpt-4o-mini",
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9._:/@+-]+$"
    )]
    pub name: String,
    /// The provider that serves it.
    #[schema(
        example = "openai",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub provider: String,
    /// Whether chats that set no model use it.
    #[serde(rename = "default")]
    pub is_default: bool,
    /// The largest `maxTokens` a chat may set for it.
    #[schema(minimum = 1, maximum = 1_000_000, example = 16384)]
    pub max_output_tokens: u32,
    /// Models tried in order when it fails before its first token (429, 5xx, no
    /// connection, first-token timeout).
    pub fallbacks: Vec<String>,
}

impl ModelDto {
    fn new(m: &ModelInfo, list: &ModelList) -> Self {
        Self {
            name: m.name().as_str().to_owned(),
            provider: m.provider().as_str().to_owned(),
            is_default: list.is_default(m.name().as_str()),
            max_output_tokens: m.max_output_tokens(),
            fallbacks: m
                .fallbacks()
                .iter()
                .filter(|f| list.find(f.as_str()).is_some())
                .map(|f| f.as_str().to_owned())
                .collect(),
        }
    }
}

/// The models on offer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelListDto {
    /// Every model, in configuration order (discovered models after each provider's fixed ones).
    pub items: Vec<ModelDto>,
    /// The default model's name; `null` only while no provider has listed any model.
    #[schema(required = true)]
    pub default_model: Option<String>,
}

/// List the models a chat may use.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = ModelListDto, description = "The models on offer now (a discovering provider's list is re-read periodically)")),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
) -> Result<HttpResponse, ApiError> {
    let list = state.models.list(&actor);
    Ok(HttpResponse::Ok().json(ModelListDto {
        items: list
            .models()
            .iter()
            .map(|m| ModelDto::new(m, &list))
            .collect(),
        default_model: list.default_model().map(|m| m.name().as_str().to_owned()),
    }))
}
