//! End to end over two clusters (two control planes on this machine): submissions to Jobs
//! through the service placing them across both, beside the same through the service on one
//! cluster, and beside a plain kube client creating the same Jobs in both at once. The two
//! control planes share this machine's CPUs, so the ratio to the plain client is the figure
//! that counts.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

use crate::accept::request_body;
use crate::cluster::direct;
use crate::harness::{
    Backend, Database, Scale, Service, Table, kube_client, rate, submit_batches, token,
};

/// Creates at once per cluster, for the plain client: what it needs to reach one API
/// server's throughput (BENCHMARKS.md).
const CLIENT_CONCURRENCY: usize = 16;
const PER_REQUEST: usize = 100;

pub async fn run(first: &Path, second: &Path, scale: Scale) -> anyhow::Result<()> {
    let clients = [kube_client(first).await?, kube_client(second).await?];
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    // `lone-`: the test suite's simulated node leaves these alone: no payload runs.
    let namespaces = ["both", "one", "direct"]
        .map(|kind| format!("lone-bench-{kind}-{}", &suffix[suffix.len() - 8..]));
    for client in &clients {
        let api: Api<Namespace> = Api::all(client.clone());
        for name in &namespaces {
            let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
            api.create(&PostParams::default(), &namespace).await?;
        }
    }
    let measured = measure([first, second], &clients, &namespaces, scale.clusters_jobs).await;
    for client in &clients {
        let api: Api<Namespace> = Api::all(client.clone());
        for name in &namespaces {
            let _ = api.delete(name, &DeleteParams::background()).await;
        }
    }
    let (both, one, plain) = measured?;

    let table = Table::start(
        &format!(
            "End to end over two clusters: {} submissions to {} Jobs (SQLite, --placement balanced)",
            scale.clusters_jobs, scale.clusters_jobs
        ),
        &[
            "how",
            "Jobs/s",
            "all Jobs created after",
            "ratio to the plain client in both",
        ],
    );
    let plain_rate = scale.clusters_jobs as f64 / plain.as_secs_f64();
    for (how, took) in [
        ("through the service, placed across two clusters", both.0),
        ("through the service, one cluster", one),
        (
            "plain kube client, 16 concurrent creates in each cluster",
            plain,
        ),
    ] {
        let per_second = scale.clusters_jobs as f64 / took.as_secs_f64();
        table.row(&[
            how.into(),
            rate(per_second),
            format!("{:.2} s for {}", took.as_secs_f64(), scale.clusters_jobs),
            format!("{:.2}", per_second / plain_rate),
        ]);
    }
    println!(
        "\nPlaced by the service across the two: {} and {} Jobs.",
        both.1[0], both.1[1]
    );
    Ok(())
}

/// (over both: time and Jobs in each; on one; the plain client in both)
type Figures = ((Duration, [usize; 2]), Duration, Duration);

async fn measure(
    kubeconfigs: [&Path; 2],
    clients: &[Client; 2],
    namespaces: &[String; 3],
    jobs: usize,
) -> anyhow::Result<Figures> {
    let both = through_service(kubeconfigs, clients, &namespaces[0], jobs).await?;
    let one = through_service(
        [kubeconfigs[0]],
        std::slice::from_ref(&clients[0]),
        &namespaces[1],
        jobs,
    )
    .await?
    .0;
    let half = jobs / 2;
    let started = Instant::now();
    let (first, second) = tokio::join!(
        direct(&clients[0], &namespaces[2], half, CLIENT_CONCURRENCY),
        direct(&clients[1], &namespaces[2], jobs - half, CLIENT_CONCURRENCY),
    );
    first?;
    second?;
    let plain = started.elapsed();
    Ok((both, one, plain))
}

/// Time from the first submit until `jobs` Jobs exist across `clients`' clusters, with the
/// service given each of `kubeconfigs` as a `--cluster`; and how many each cluster got.
async fn through_service<const N: usize>(
    kubeconfigs: [&Path; N],
    clients: &[Client],
    namespace: &str,
    jobs: usize,
) -> anyhow::Result<(Duration, [usize; N])> {
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
    let clusters = kubeconfigs
        .iter()
        .enumerate()
        .map(|(n, path)| format!("c{n}={}", path.display()))
        .collect::<Vec<_>>()
        .join(",");
    let service = Service::start_with(
        &database,
        None,
        &[
            ("SUBMISSION_HELPER_CLUSTERS", &clusters),
            ("SUBMISSION_HELPER_NAMESPACE", namespace),
            ("SUBMISSION_HELPER_PLACEMENT", "balanced"),
        ],
    )
    .await?;
    let mut seen = Vec::new();
    for client in clients {
        seen.push(jobs_seen(client, namespace).await?);
    }
    let started = Instant::now();
    let submissions = (0..jobs).map(|n| request_body("e2e", n)).collect();
    submit_batches(&service, &secret, submissions, PER_REQUEST).await?;
    let counts = tokio::time::timeout(Duration::from_secs(600), all_seen(&mut seen, jobs))
        .await
        .map_err(|_| anyhow::anyhow!("not every Job was seen within 10 minutes"))??;
    let took = started.elapsed();
    service.stop().await?;
    let mut per_cluster = [0; N];
    for (slot, count) in per_cluster.iter_mut().zip(counts) {
        *slot = count;
    }
    Ok((took, per_cluster))
}

/// How many Jobs a watch of `namespace` has seen so far, open and listed when this returns.
async fn jobs_seen(
    client: &Client,
    namespace: &str,
) -> anyhow::Result<tokio::sync::watch::Receiver<usize>> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let (listed, listed_rx) = tokio::sync::oneshot::channel();
    let (count, receiver) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut names = HashSet::new();
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Ok(Some(event)) = stream.try_next().await {
            match event {
                watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                    if job.metadata.name.is_some_and(|name| names.insert(name))
                        && count.send(names.len()).is_err()
                    {
                        return;
                    }
                }
                watcher::Event::InitDone => {
                    if let Some(listed) = listed.take() {
                        let _ = listed.send(());
                    }
                }
                watcher::Event::Init | watcher::Event::Delete(_) => {}
            }
        }
    });
    listed_rx
        .await
        .map_err(|_| anyhow::anyhow!("the watch stopped before its first list"))?;
    Ok(receiver)
}

/// Waits until the watches have seen `jobs` Jobs together; how many each has.
async fn all_seen(
    seen: &mut [tokio::sync::watch::Receiver<usize>],
    jobs: usize,
) -> anyhow::Result<Vec<usize>> {
    loop {
        let counts: Vec<usize> = seen.iter().map(|seen| *seen.borrow()).collect();
        if counts.iter().sum::<usize>() >= jobs {
            return Ok(counts);
        }
        let changes = seen.iter_mut().map(|seen| Box::pin(seen.changed()));
        futures::future::select_all(changes)
            .await
            .0
            .map_err(|_| anyhow::anyhow!("a watch of Jobs stopped"))?;
    }
}
