//! A start with a long queue: how soon the first Job is created after the service starts with
//! 100,000 queued submissions in its database (1,000 in the smoke run), and whether its memory
//! grows with the queue, beside the same start with a queue a hundred times shorter.
//!
//! The submissions are one user's, and the service runs with `--max-concurrent 50`, so it
//! creates 50 Jobs and then holds the rest of the queue (as a campaign behind its user's
//! limit does); the payloads never run (a `lone-` namespace, which no simulated node serves).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use submission_helper::storage::Store;

use crate::accept::submission;
use crate::harness::{
    Backend, Database, Memory, Scale, Service, Table, kube_client, times_of_jobs,
};

/// Jobs the user may have at once.
const LIMIT: usize = 50;
/// Rows per insert while filling the queue.
const PER_INSERT: usize = 1000;
/// When the memory is read, after the start (1 s in the smoke run).
const SETTLE: Duration = Duration::from_secs(10);

/// What one start measured.
struct Start {
    first_job: Duration,
    limit_reached: Duration,
    memory: Memory,
}

pub async fn run(kubeconfig: &Path, backend: Backend, scale: Scale) -> anyhow::Result<()> {
    let long = scale.backlog;
    let short = (long / 100).max(LIMIT);
    let settle = if scale.full {
        SETTLE
    } else {
        Duration::from_secs(1)
    };
    let memory = format!("RSS {} s after the start (peak)", settle.as_secs());
    let table = Table::start(
        &format!("A start with {long} queued submissions ({backend})"),
        &[
            "queued at start",
            "service started to first Job created",
            "to the user's 50 Jobs created",
            memory.as_str(),
        ],
    );
    for queued in [short, long] {
        let start = start_with_queue(kubeconfig, backend, queued, settle).await?;
        table.row(&[
            queued.to_string(),
            format!("{:.0} ms", start.first_job.as_secs_f64() * 1000.0),
            format!("{:.0} ms", start.limit_reached.as_secs_f64() * 1000.0),
            format!(
                "{:.1} MiB ({:.1} MiB)",
                start.memory.now_mib, start.memory.peak_mib
            ),
        ]);
    }
    Ok(())
}

async fn start_with_queue(
    kubeconfig: &Path,
    backend: Backend,
    queued: usize,
    settle: Duration,
) -> anyhow::Result<Start> {
    let client = kube_client(kubeconfig).await?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let name = format!("lone-bench-backlog-{}", &suffix[suffix.len() - 8..]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;

    let database = Database::create(backend).await?;
    fill(&database, &name, queued).await?;

    let limit = LIMIT.to_string();
    let settings = [("SUBMISSION_HELPER_MAX_CONCURRENT", limit.as_str())];
    let (first_job, limit_reached, service) = {
        let mut seen = times_of_jobs(&client, &name, |_| true, [1, LIMIT]).await?;
        let started = Instant::now();
        let service = Service::start_with(&database, Some((kubeconfig, &name)), &settings).await?;
        let mut at = Vec::new();
        for _ in 0..2 {
            let seen = tokio::time::timeout(Duration::from_secs(300), seen.recv())
                .await
                .context("no Job within 5 minutes")?
                .context("the watch of Jobs ended")?;
            at.push(seen - started);
        }
        tokio::time::sleep_until((started + settle).into()).await;
        (at[0], at[1], service)
    };
    let memory = service.memory()?;
    service.stop().await?;
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
    Ok(Start {
        first_job,
        limit_reached,
        memory,
    })
}

/// Stores `queued` queued submissions of one user in `namespace`, as a campaign submitted
/// earlier would have left them.
async fn fill(database: &Database, namespace: &str, queued: usize) -> anyhow::Result<()> {
    let store = Store::connect(&database.url).await?;
    let mut left = queued;
    let mut n = 0;
    while left > 0 {
        let rows = left.min(PER_INSERT);
        let batch = (n..n + rows)
            .map(|n| {
                let mut queued = submission("backlog", n, "bench")?;
                queued.namespace = namespace.to_owned();
                Ok(queued)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.insert(batch).await?;
        n += rows;
        left -= rows;
    }
    Ok(())
}
