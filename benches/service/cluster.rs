//! End to end on the local control plane: how fast submissions become Jobs through the
//! service, beside a plain kube client creating the same Jobs with 16 concurrent requests (the
//! ceiling), the same client while it also watches its namespace's Jobs and pods as the
//! service's caches do (what the service's reads cost the API server), and one create at a time
//! (how the command-line helper created them).
//!
//! Each size runs several times on each database; every run measures the service and the plain
//! client seconds apart, each until an independent watch has seen its last Job, on an API
//! server cleared of the previous run's Jobs, and the service takes turns going first and last
//! (an API server holding more objects answers a little slower). The service's CPU time and its
//! reconciles are those of its whole life, from its start to the last Job seen.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::TryStreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde_json::json;
use submission_helper::cluster::client::app_selector;
use submission_helper::cluster::manifest::{self, PodSettings};

use crate::accept::{request_body, submission};
use crate::harness::{
    Backend, Database, Scale, Service, Table, create_jobs, kube_client, postgres_cpu_seconds, rate,
    submit_batches, time_until_jobs, token,
};
use crate::live::metrics;

const CLIENT_CONCURRENCY: usize = 16;
/// Submissions per batch request when submitting to the service.
const PER_REQUEST: usize = 100;
/// How long a namespace of the last run may take to go, with its Jobs and pods.
const CLEARED_WITHIN: Duration = Duration::from_secs(600);

pub async fn run(kubeconfig: &Path, backends: &[Backend], scale: Scale) -> anyhow::Result<()> {
    let client = kube_client(kubeconfig).await?;
    for backend in backends {
        for jobs in scale.e2e_sizes() {
            let table = Table::start(
                &format!("End to end: {jobs} submissions to {jobs} Jobs ({backend})"),
                &[
                    "run",
                    "service",
                    "through the service (batches of 100)",
                    "its CPU (Postgres server's) / reconciles",
                    "direct kube client, 16 concurrent creates",
                    "ratio",
                    "the same client watching Jobs and pods",
                    "ratio",
                ],
            );
            let mut ratios = Vec::new();
            let mut watched_ratios = Vec::new();
            for run in 0..scale.runs {
                let service_first = run % 2 == 0;
                let measured = one_run(
                    kubeconfig,
                    &client,
                    *backend,
                    jobs,
                    service_first,
                    scale.full,
                )
                .await?;
                let ratio = measured.direct.as_secs_f64() / measured.service.took.as_secs_f64();
                let watched_ratio =
                    measured.watched.as_secs_f64() / measured.service.took.as_secs_f64();
                ratios.push(ratio);
                watched_ratios.push(watched_ratio);
                table.row(&[
                    format!("{}", run + 1),
                    if service_first { "first" } else { "last" }.into(),
                    figure(jobs, measured.service.took),
                    format!(
                        "{:.1} s{} / {}",
                        measured.service.cpu_seconds,
                        measured
                            .service
                            .database_cpu_seconds
                            .map(|seconds| format!(" ({seconds:.1} s)"))
                            .unwrap_or_default(),
                        measured.service.reconciles
                    ),
                    figure(jobs, measured.direct),
                    format!("{ratio:.2}"),
                    figure(jobs, measured.watched),
                    format!("{watched_ratio:.2}"),
                ]);
            }
            if let (Some(median), Some(watched)) =
                (median(&mut ratios), median(&mut watched_ratios))
            {
                table.row(&[
                    "median".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{median:.2}"),
                    String::new(),
                    format!("{watched:.2}"),
                ]);
            }
        }
    }
    // How the command-line helper created Jobs, once, for scale.
    let jobs = (scale.jobs / 5).max(1);
    let namespace = Scratch::create(&client, "serial").await?;
    let serial = direct(&client, &namespace.name, jobs, 1).await;
    namespace.clear(&client, false).await?;
    let serial = serial?;
    println!(
        "\nOne create at a time (as the command-line helper did): {} for {jobs} Jobs ({:.2} s).",
        rate(jobs as f64 / serial.as_secs_f64()),
        serial.as_secs_f64()
    );
    Ok(())
}

fn figure(jobs: usize, took: Duration) -> String {
    format!(
        "{} ({:.2} s)",
        rate(jobs as f64 / took.as_secs_f64()),
        took.as_secs_f64()
    )
}

/// What one run measured.
struct Measured {
    service: Served,
    direct: Duration,
    watched: Duration,
}

/// One run: the service's time, the plain client's and the watching client's, for `jobs` Jobs
/// each, each in a namespace of its own, deleted before the run ends (and gone, if `wait`).
async fn one_run(
    kubeconfig: &Path,
    client: &Client,
    backend: Backend,
    jobs: usize,
    service_first: bool,
    wait: bool,
) -> anyhow::Result<Measured> {
    let service_namespace = Scratch::create(client, "service").await?;
    let direct_namespace = Scratch::create(client, "direct").await?;
    let watched_namespace = Scratch::create(client, "watched").await?;
    let measured = async {
        let service = if service_first {
            Some(through_service(kubeconfig, client, backend, &service_namespace.name, jobs).await?)
        } else {
            None
        };
        let direct = timed_direct(client, &direct_namespace.name, jobs).await?;
        let watched = timed_watching(client, &watched_namespace.name, jobs).await?;
        let service = match service {
            Some(service) => service,
            None => {
                through_service(kubeconfig, client, backend, &service_namespace.name, jobs).await?
            }
        };
        Ok(Measured {
            service,
            direct,
            watched,
        })
    }
    .await;
    service_namespace.clear(client, wait).await?;
    direct_namespace.clear(client, wait).await?;
    watched_namespace.clear(client, wait).await?;
    measured
}

/// A namespace of one measurement. `lone-`: the simulated node of the test suite leaves these
/// namespaces alone, so no payload runs; the job controller still creates every pod.
struct Scratch {
    name: String,
}

impl Scratch {
    async fn create(client: &Client, kind: &str) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("lone-bench-{kind}-{}", &suffix[suffix.len() - 8..]);
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(Scratch { name })
    }

    /// Deletes the namespace and, if `wait`, waits until it is gone, its Jobs and pods with
    /// it, so the next measurement starts on an API server without them (the smoke run
    /// measures nothing, and does not wait).
    async fn clear(self, client: &Client, wait: bool) -> anyhow::Result<()> {
        let api = Api::<Namespace>::all(client.clone());
        api.delete(&self.name, &DeleteParams::background()).await?;
        if !wait {
            return Ok(());
        }
        let deadline = Instant::now() + CLEARED_WITHIN;
        while api.get_opt(&self.name).await?.is_some() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "namespace {} still there after {CLEARED_WITHIN:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

/// The service's run: how long, and what it spent.
struct Served {
    took: Duration,
    cpu_seconds: f64,
    /// The Postgres server's, over the same time; none on SQLite (in the service's process).
    database_cpu_seconds: Option<f64>,
    reconciles: f64,
}

/// Time from the first submit until the last of `jobs` Jobs exists.
async fn through_service(
    kubeconfig: &Path,
    client: &Client,
    backend: Backend,
    namespace: &str,
    jobs: usize,
) -> anyhow::Result<Served> {
    let database = Database::create(backend).await?;
    let secret = token(&database, "bench", false).await?;
    let database_before = postgres_cpu_seconds().filter(|_| backend == Backend::Postgres);
    let service = Service::start(&database, Some((kubeconfig, namespace))).await?;
    let took = time_until_jobs(
        client,
        namespace,
        jobs,
        |_| true,
        || async {
            let submissions = (0..jobs).map(|n| request_body("e2e", n)).collect();
            submit_batches(&service, &secret, submissions, PER_REQUEST).await
        },
    )
    .await;
    let spent = async {
        let metrics = metrics(&service).await?;
        let reconciles = metrics
            .get("submission_helper_reconciles_total{result=\"ok\"}")
            .copied()
            .unwrap_or(0.0);
        let database = database_before.and_then(|before| Some(postgres_cpu_seconds()? - before));
        anyhow::Ok((service.cpu_seconds()?, database, reconciles))
    }
    .await;
    service.stop().await?;
    // The timing's error first: a scrape that failed after it is only a consequence.
    let took = took?;
    let (cpu_seconds, database_cpu_seconds, reconciles) = spent?;
    Ok(Served {
        took,
        cpu_seconds,
        database_cpu_seconds,
        reconciles,
    })
}

/// Time from the plain client's first create until the last of `jobs` Jobs exists, seen by
/// the same independent watch as the service's (which the API server also streams every Job
/// to).
async fn timed_direct(client: &Client, namespace: &str, jobs: usize) -> anyhow::Result<Duration> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let manifests = manifests(namespace, jobs)?;
    time_until_jobs(
        client,
        namespace,
        jobs,
        |_| true,
        || create_jobs(&api, manifests, CLIENT_CONCURRENCY),
    )
    .await
}

/// [`timed_direct`] while the client also watches the namespace's Jobs and pods of the app, as
/// the service's caches do: what streaming them costs the API server and the machine, which the
/// service cannot do without (its views, `/pods` and log follows read them).
async fn timed_watching(client: &Client, namespace: &str, jobs: usize) -> anyhow::Result<Duration> {
    let selector = watcher::Config::default().labels(&app_selector());
    let jobs_watch =
        watch_listed(Api::<Job>::namespaced(client.clone(), namespace), &selector).await?;
    let pods_watch =
        match watch_listed(Api::<Pod>::namespaced(client.clone(), namespace), &selector).await {
            Ok(watch) => watch,
            Err(error) => {
                jobs_watch.abort();
                return Err(error);
            }
        };
    let took = timed_direct(client, namespace, jobs).await;
    jobs_watch.abort();
    pods_watch.abort();
    took
}

/// A watch that decodes every object of `api` and keeps it, running once it has listed.
async fn watch_listed<K>(
    api: Api<K>,
    config: &watcher::Config,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (listed, listed_rx) = tokio::sync::oneshot::channel();
    let config = config.clone();
    let task = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut kept = std::collections::HashMap::new();
        let mut events = std::pin::pin!(watcher(api, config));
        while let Ok(Some(event)) = events.try_next().await {
            match event {
                watcher::Event::InitDone => {
                    if let Some(listed) = listed.take() {
                        let _ = listed.send(());
                    }
                }
                watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                    kept.insert(kube::ResourceExt::name_any(&object), object);
                }
                watcher::Event::Delete(object) => {
                    kept.remove(&kube::ResourceExt::name_any(&object));
                }
                watcher::Event::Init => {}
            }
        }
    });
    let listed = tokio::time::timeout(Duration::from_secs(60), listed_rx)
        .await
        .context("the watch did not list within a minute")
        .and_then(|sent| sent.context("the watch stopped before it listed"));
    if listed.is_err() {
        task.abort();
    }
    listed.map(|()| task)
}

/// Time for `concurrency` loops of creates to create `jobs` Jobs.
pub async fn direct(
    client: &Client,
    namespace: &str,
    jobs: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let manifests = manifests(namespace, jobs)?;
    let started = Instant::now();
    create_jobs(&api, manifests, concurrency).await?;
    Ok(started.elapsed())
}

/// The Jobs the service would create for `jobs` submissions, in `namespace`.
fn manifests(namespace: &str, jobs: usize) -> anyhow::Result<Vec<Job>> {
    (0..jobs)
        .map(|n| {
            let mut submission = submission("e2e", n, "bench")?;
            submission.namespace = namespace.to_owned();
            Ok(manifest::job(&submission, &PodSettings::default()))
        })
        .collect()
}

/// The middle of `figures`, or the mean of the two middle ones when their number is even.
fn median(figures: &mut [f64]) -> Option<f64> {
    figures.sort_by(f64::total_cmp);
    let middle = figures.len() / 2;
    match figures.len() {
        0 => None,
        n if n % 2 == 1 => figures.get(middle).copied(),
        _ => Some((figures[middle - 1] + figures[middle]) / 2.0),
    }
}
