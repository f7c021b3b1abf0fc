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
    /// `ok` when every cluster answers, else which do not and why; ready while one answers.
    pub cluster: String,
    /// Each cluster by name: `ok`, or why not.
    pub clusters: std::collections::BTreeMap<String, String>,
    /// With `--kueue`: whether Kueue is installed and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kueue: Option<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the API server of at least one cluster answer (and Kueue, with `--kueue`).
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
    let first = context.clusters.first();
    let kueue = async {
        match first.kueue() {
            Some(_) => Some(kueue::probe(first).await),
            None => None,
        }
    };
    let probes = futures::future::join_all(context.clusters.iter().map(|cluster| async move {
        let answer = cluster.probe().await.map_err(|error| {
            tracing::warn!(cluster = cluster.name(), %error, "cluster not ready");
            error.short_cause().to_owned()
        });
        (cluster.name().to_owned(), answer)
    }));
    let (database, probes, kueue) = tokio::join!(context.store.ping(), probes, kueue);
    let describe = |result: Result<(), String>| result.err().unwrap_or_else(|| "ok".into());
    let one_answers = probes.iter().any(|(_, answer)| answer.is_ok());
    let failing: Vec<String> = probes
        .iter()
        .filter_map(|(name, answer)| answer.as_ref().err().map(|why| (name, why)))
        .map(|(name, why)| match context.clusters.len() {
            1 => why.clone(),
            _ => format!("{name}: {why}"),
        })
        .collect();
    let readiness = Readiness {
        ready: database.is_ok() && one_answers && kueue.as_ref().is_none_or(Result::is_ok),
        kueue: kueue.map(describe),
        database: describe(database.map_err(|error| {
            tracing::warn!(%error, "database not ready");
            "the database does not answer".to_owned()
        })),
        cluster: match failing.is_empty() {
            true => "ok".into(),
            false => failing.join("; "),
        },
        clusters: probes
            .into_iter()
            .map(|(name, answer)| (name, describe(answer)))
            .collect(),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
