//! Health routes: `/healthz` (the process is alive) and `/readyz` (storage reachable,
//! migrations applied, broker state reported). Neither needs a token.

use crate::error::{problem_response, Problem};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::collections::BTreeMap;

/// What an unready answer's `Retry-After` says.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// One readiness check's outcome, as a probe finds it. Only its state is shown
/// ([`CheckState`]); the detail, which may name hosts, ports or driver errors, goes to
/// the log.
#[derive(Debug, Clone)]
pub struct Check {
    /// Whether this check passes.
    pub ok: bool,
    /// What was found (logged when the check fails; never in the response).
    pub detail: String,
    /// Whether the service is ready only if this passes (a broker outage does not make
    /// the service unready: events wait in the outbox).
    pub required: bool,
}

/// A check's state, as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// The check passes.
    Ok,
    /// What it checks cannot be used now (unreachable, or not migrated).
    Unavailable,
    /// The process is shutting down.
    Draining,
}

/// Something `/readyz` asks.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + std::fmt::Debug {
    /// Runs the checks, by name.
    async fn checks(&self) -> BTreeMap<String, Check>;

    /// Figures for `/metrics` that only the adapters know (database pools, outbox
    /// backlog), read at each scrape; none by default.
    async fn gauges(&self) -> crate::metrics::GaugeSample {
        crate::metrics::GaugeSample::default()
    }
}

/// The readiness report (200).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready` (an unready service answers 503 with a [`NotReady`] problem).
    #[schema(value_type = String, pattern = "^ready$")]
    pub status: &'static str,
    /// Each check by name, with its state only: `storage` (required), `events` (with
    /// PostgreSQL storage; reported only); more may be added.
    pub checks: BTreeMap<String, CheckState>,
}

/// The readiness problem (503): type `/problems/unavailable`, with each check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotReady {
    /// The problem; `detail` names the failing required checks.
    #[serde(flatten)]
    pub problem: Problem,
    /// Each check by name, with its state only (`shutdown`: `draining` while stopping).
    pub checks: BTreeMap<String, CheckState>,
}

/// The liveness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `alive`.
    #[schema(value_type = String, pattern = "^alive$")]
    pub status: &'static str,
}

/// Liveness: answers 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health, description = "Alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "alive" })
}

/// Readiness: 200 when storage is reachable and migrated, 503 otherwise, and 503
/// while shutting down (so load balancers stop routing here). Only each check's state
/// is shown; why a check fails is logged.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness, description = "Ready"),
        (status = 503, body = NotReady, description = "Not ready (or shutting down); see `Retry-After`")))]
pub async fn readyz(
    probe: web::Data<dyn Probe>,
    _state: web::Data<AppState>,
    draining: Option<web::Data<crate::shutdown::Draining>>,
) -> HttpResponse {
    let mut failing: Vec<String> = Vec::new();
    let mut checks = BTreeMap::new();
    for (name, check) in probe.checks().await {
        let state = if check.ok {
            CheckState::Ok
        } else {
            tracing::warn!(check = %name, detail = %check.detail, required = check.required, "readiness check fails");
            if check.required {
                failing.push(name.clone());
            }
            CheckState::Unavailable
        };
        checks.insert(name, state);
    }
    if draining.is_some_and(|d| d.is_draining()) {
        checks.insert("shutdown".to_owned(), CheckState::Draining);
        failing.push("shutdown".to_owned());
    }
    if failing.is_empty() {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            checks,
        });
    }
    failing.sort();
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let detail = format!("not ready: {}", failing.join(", "));
    let problem = Problem::new(status, "unavailable", "Service unavailable", detail);
    problem_response(status, Some(RETRY_AFTER)).json(NotReady { problem, checks })
}

/// The probe of in-memory storage: always ready.
#[derive(Debug)]
pub struct MemoryProbe;

#[async_trait::async_trait]
impl Probe for MemoryProbe {
    async fn checks(&self) -> BTreeMap<String, Check> {
        BTreeMap::from([(
            "storage".to_owned(),
            Check {
                ok: true,
                detail: "in memory (throw-away)".into(),
                required: true,
            },
        )])
    }
}
