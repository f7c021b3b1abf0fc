//! `/healthz` (the process answers) and `/readyz` (the database and the API server answer).

use axum::Json;
use axum::extract::State as AppState;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;

/// How each dependency is doing: `ok`, or why not in a few words (the details are in the log).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: String,
    pub cluster: String,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the API server both answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; each field says why", body = Readiness),
    )
)]
pub async fn readyz(AppState(context): AppState<Context>) -> (StatusCode, Json<Readiness>) {
    let (database, cluster) = tokio::join!(context.store.ping(), context.cluster.probe());
    let describe = |result: Result<(), String>| result.err().unwrap_or_else(|| "ok".into());
    let readiness = Readiness {
        ready: database.is_ok() && cluster.is_ok(),
        database: describe(database.map_err(|error| {
            tracing::warn!(%error, "database not ready");
            "the database does not answer".to_owned()
        })),
        cluster: describe(cluster.map_err(|error| {
            tracing::warn!(%error, "cluster not ready");
            error.short_cause().to_owned()
        })),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
