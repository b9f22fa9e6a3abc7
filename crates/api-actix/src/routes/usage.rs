//! `GET /api/v1/usage`: the caller's token usage per UTC day or model, and purpose.

use crate::dto::usage::{range_problem, UsageQuery, UsageReportDto};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use domain::services::UsageError;

/// The caller's token usage.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", params(UsageQuery),
    responses(
        (status = 200, body = UsageReportDto, description = "Tokens the caller spent from `from` to `to` (UTC days, both included): replies (sends and regenerates, streamed or not, including cancelled and failed replies that produced text) and automatic titles, as the provider reported them or, when it reported none, estimated (`estimatedTokens`)"),
        (status = 422, body = crate::error::Problem, description = "A malformed date or grouping (type `/problems/validation`, `errors` names each parameter); or `from` after `to`, or a range longer than 366 days (type `/problems/unprocessable`)")),
    security(("bearer" = [])))]
pub async fn report(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to, group_by) = query.request()?;
    let report = state
        .usage
        .report(&actor, from, to, group_by)
        .await
        .map_err(|e| match e {
            UsageError::InvalidRange(e) => range_problem(e),
            UsageError::Unavailable(e) => ApiError::Unavailable(e),
            UsageError::Unknown(e) => ApiError::Internal(e),
        })?;
    Ok(HttpResponse::Ok().json(UsageReportDto::from(&report)))
}
