//! A whole campaign cancelled while its payloads run: how long the cancel takes to answer, and
//! how soon every Job and pod is gone from the cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::harness::{
    Backend, Database, LoneNamespace, Scale, Service, Table, expect_success, ms, submit_batches,
    token,
};
use crate::live::wait_for;

/// Submissions per batch request.
const PER_REQUEST: usize = 500;

pub async fn run(kubeconfig: &Path, node_sim: &Path, scale: Scale) -> anyhow::Result<()> {
    let lone = LoneNamespace::create(kubeconfig, node_sim, "cancel", scale.cancel_live).await?;
    let measured = measure(kubeconfig, &lone, scale).await;
    lone.remove().await;
    measured
}

async fn measure(kubeconfig: &Path, lone: &LoneNamespace, scale: Scale) -> anyhow::Result<()> {
    let (client, namespace) = (&lone.client, lone.name.as_str());
    let count = scale.cancel_live;
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
    let service = Service::start(&database, Some((kubeconfig, namespace))).await?;
    let doomed = json!({"image": "busybox", "command": "echo started; exec sleep 3600",
                        "labels": {"campaign": "doomed"}});
    submit_batches(&service, &secret, vec![doomed; count], PER_REQUEST).await?;
    wait_for(
        &service,
        &secret,
        "running",
        count,
        Duration::from_secs(1800),
    )
    .await
    .context("every payload running")?;

    let started = Instant::now();
    let answer: Value = expect_success(
        service
            .http
            .post(format!("{}/v1/submissions/cancel", service.url))
            .bearer_auth(&secret)
            .json(&json!({"labels": {"campaign": "doomed"}})),
    )
    .await?
    .json()
    .await?;
    let answered = started.elapsed();
    let cancelled = answer["cancelled"].as_array().cloned().unwrap_or_default();
    if cancelled.len() != count {
        bail!("the cancel cancelled {} of {count}", cancelled.len());
    }
    let (jobs_gone, pods_gone) = until_gone(client, namespace, started).await?;
    let kept = logs_kept(&service, &secret, &cancelled).await?;
    let memory = service.memory()?;

    // The reference: as many running payloads deleted by a plain client, the way
    // `kubectl delete jobs -l ...` does (one collection delete, background propagation).
    let reference = json!({"image": "busybox", "command": "exec sleep 3600",
                           "labels": {"campaign": "reference"}});
    submit_batches(&service, &secret, vec![reference; count], PER_REQUEST).await?;
    wait_for(
        &service,
        &secret,
        "running",
        count,
        Duration::from_secs(1800),
    )
    .await
    .context("every reference payload running")?;
    service.stop().await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    jobs.delete_collection(
        &kube::api::DeleteParams::background(),
        &ListParams::default().labels("campaign=reference"),
    )
    .await?;
    let deleted = started.elapsed();
    let (reference_jobs_gone, reference_pods_gone) = until_gone(client, namespace, started).await?;

    let table = Table::start(
        &format!("Cancel: one campaign of {count} running payloads (SQLite)"),
        &[
            "figure",
            "the service",
            "a plain client (`kubectl delete jobs -l`)",
        ],
    );
    let seconds =
        |took: Option<Duration>| format!("{:.1} s", took.unwrap_or_default().as_secs_f64());
    for (figure, value, reference) in [
        ("the cancel answered after", ms(answered), ms(deleted)),
        (
            "every Job gone from the API server after",
            seconds(jobs_gone),
            seconds(reference_jobs_gone),
        ),
        (
            "every pod gone after",
            seconds(pods_gone),
            seconds(reference_pods_gone),
        ),
        (
            "logs kept, of a sample of cancelled submissions",
            kept,
            "- (deleted with their pods)".into(),
        ),
        (
            "service RSS after (peak)",
            format!("{:.1} MiB ({:.1} MiB)", memory.now_mib, memory.peak_mib),
            "-".into(),
        ),
    ] {
        table.row(&[figure.into(), value, reference]);
    }
    Ok(())
}

/// How many of (up to) 20 cancelled submissions still serve the line their payload printed
/// before it was cancelled, now that their pods are gone.
async fn logs_kept(service: &Service, secret: &str, cancelled: &[Value]) -> anyhow::Result<String> {
    let step = (cancelled.len() / 20).max(1);
    let sample: Vec<&str> = cancelled
        .iter()
        .step_by(step)
        .filter_map(|submission| submission["id"].as_str())
        .collect();
    let mut kept = 0;
    for id in &sample {
        let log = service
            .http
            .get(format!("{}/v1/submissions/{id}/logs", service.url))
            .bearer_auth(secret)
            .send()
            .await?
            .text()
            .await?;
        if log.contains("started") {
            kept += 1;
        }
    }
    Ok(format!("{kept} of {}", sample.len()))
}

/// Waits until no Job and no pod is left in `namespace`; returns when each went, counted
/// from `started`.
async fn until_gone(
    client: &kube::Client,
    namespace: &str,
    started: Instant,
) -> anyhow::Result<(Option<Duration>, Option<Duration>)> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let (mut jobs_gone, mut pods_gone) = (None, None);
    let deadline = started + Duration::from_secs(1800);
    while jobs_gone.is_none() || pods_gone.is_none() {
        if jobs_gone.is_none()
            && jobs
                .list_metadata(&ListParams::default())
                .await?
                .items
                .is_empty()
        {
            jobs_gone = Some(started.elapsed());
        }
        if pods_gone.is_none()
            && pods
                .list_metadata(&ListParams::default())
                .await?
                .items
                .is_empty()
        {
            pods_gone = Some(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("Jobs or pods still there after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok((jobs_gone, pods_gone))
}
