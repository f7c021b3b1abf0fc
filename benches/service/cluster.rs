//! End to end on the local control plane: how fast submissions become Jobs through the
//! service, beside a plain kube client creating the same Jobs with 16 concurrent requests (the
//! ceiling) and one at a time (how the command-line helper created them).

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use submission_helper::cluster::manifest::{self, PodSettings};

use crate::accept::{request_body, submission};
use crate::harness::{
    Backend, Database, Scale, Service, Table, create_jobs, kube_client, rate, submit_batches,
    time_until_jobs, token,
};

const CLIENT_CONCURRENCY: usize = 16;
/// Submissions per batch request when submitting to the service.
const PER_REQUEST: usize = 100;

pub async fn run(kubeconfig: &Path, scale: Scale) -> anyhow::Result<()> {
    let client = kube_client(kubeconfig).await?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    // `lone-`: the simulated node of the test suite leaves these namespaces alone, so no
    // payload runs; the job controller still creates every pod.
    let namespaces = ["service", "direct", "serial"]
        .map(|kind| format!("lone-bench-{kind}-{}", &suffix[suffix.len() - 8..]));
    let namespace_api: Api<Namespace> = Api::all(client.clone());
    for name in &namespaces {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        namespace_api
            .create(&PostParams::default(), &namespace)
            .await?;
    }
    let measured = measure(kubeconfig, &client, &namespaces, scale).await;
    for name in &namespaces {
        // Background: the namespace controller removes the Jobs and pods.
        let _ = namespace_api
            .delete(name, &DeleteParams::background())
            .await;
    }
    let (service, direct, serial) = measured?;

    let table = Table::start(
        &format!(
            "End to end: {} submissions to {} Jobs (SQLite)",
            scale.jobs, scale.jobs
        ),
        &[
            "how",
            "Jobs/s",
            "all Jobs created after",
            "ratio to the direct client",
        ],
    );
    for (how, jobs, took) in [
        ("through the service (batches of 100)", scale.jobs, service),
        (
            "direct kube client, 16 concurrent creates",
            scale.jobs,
            direct,
        ),
        (
            "direct kube client, one at a time (the CLI helper)",
            serial.0,
            serial.1,
        ),
    ] {
        let per_second = jobs as f64 / took.as_secs_f64();
        let direct_per_second = scale.jobs as f64 / direct.as_secs_f64();
        table.row(&[
            how.into(),
            rate(per_second),
            format!("{:.2} s for {jobs}", took.as_secs_f64()),
            format!("{:.2}", per_second / direct_per_second),
        ]);
    }
    Ok(())
}

type Figures = (Duration, Duration, (usize, Duration));

async fn measure(
    kubeconfig: &Path,
    client: &Client,
    namespaces: &[String; 3],
    scale: Scale,
) -> anyhow::Result<Figures> {
    let service = through_service(kubeconfig, client, &namespaces[0], scale.jobs).await?;
    let concurrent = direct(client, &namespaces[1], scale.jobs, CLIENT_CONCURRENCY).await?;
    let serial_jobs = (scale.jobs / 5).max(1);
    let serial = direct(client, &namespaces[2], serial_jobs, 1).await?;
    Ok((service, concurrent, (serial_jobs, serial)))
}

/// Time from the first submit until the last of `jobs` Jobs exists.
async fn through_service(
    kubeconfig: &Path,
    client: &Client,
    namespace: &str,
    jobs: usize,
) -> anyhow::Result<Duration> {
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
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
    service.stop().await?;
    took
}

/// Time for `concurrency` loops of creates to create `jobs` Jobs.
pub async fn direct(
    client: &Client,
    namespace: &str,
    jobs: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let manifests = (0..jobs)
        .map(|n| {
            let mut submission = submission("e2e", n, "bench")?;
            submission.namespace = namespace.to_owned();
            Ok(manifest::job(&submission, &PodSettings::default()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    create_jobs(&api, manifests, concurrency).await?;
    Ok(started.elapsed())
}
