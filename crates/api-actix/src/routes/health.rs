//! Health routes: `/healthz` (the process is alive) and `/readyz` (storage reachable,
//! migrations applied, broker state reported). Neither needs a token.

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::collections::BTreeMap;

/// One readiness check's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// Whether this check passes.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// Whether the service is ready only if this passes (a broker outage does not make
    /// the service unready: events wait in the outbox).
    pub required: bool,
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

/// The readiness report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unready`.
    pub status: &'static str,
    /// Each check.
    pub checks: BTreeMap<String, Check>,
}

/// Liveness: answers 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}

/// Readiness: 200 when storage is reachable and migrated, 503 otherwise, and 503
/// while shutting down (so load balancers stop routing here).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(
    probe: web::Data<dyn Probe>,
    _state: web::Data<AppState>,
    draining: Option<web::Data<crate::shutdown::Draining>>,
) -> HttpResponse {
    let mut checks = probe.checks().await;
    if draining.is_some_and(|d| d.is_draining()) {
        checks.insert(
            "shutdown".to_owned(),
            Check {
                ok: false,
                detail: "draining: finishing in-flight requests before exiting".into(),
                required: true,
            },
        );
    }
    let ready = checks.values().all(|c| c.ok || !c.required);
    let body = Readiness {
        status: if ready { "ready" } else { "unready" },
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
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
