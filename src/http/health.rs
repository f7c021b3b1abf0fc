//! `/healthz` (the process answers) and `/readyz` (the database and the API server answer, and
//! Kueue when Jobs are submitted through it).

use axum::Json;
use axum::extract::State as AppState;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use crate::cluster::kueue;

/// How each dependency is doing: `ok`, or why not in a few words (the details are in the log).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: String,
    pub cluster: String,
    /// With `--kueue`: whether Kueue is installed and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kueue: Option<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the API server both answer (and Kueue, with `--kueue`).
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
    let kueue = async {
        match context.cluster.kueue() {
            Some(_) => Some(kueue::probe(&context.cluster).await),
            None => None,
        }
    };
    let (database, cluster, kueue) =
        tokio::join!(context.store.ping(), context.cluster.probe(), kueue);
    let describe = |result: Result<(), String>| result.err().unwrap_or_else(|| "ok".into());
    let readiness = Readiness {
        ready: database.is_ok() && cluster.is_ok() && kueue.as_ref().is_none_or(Result::is_ok),
        kueue: kueue.map(describe),
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
