//! Submitting through Kueue: how long submissions take, through the service (`--kueue`), to
//! be admitted by Kueue, beside a plain kube client creating the same queue-labelled,
//! suspended Jobs with 16 concurrent requests. Each side has a ClusterQueue of its own with
//! room for all, so Kueue admits as fast as it can; the clock stops when the last Job is
//! admitted (Kueue lets it run: `suspend` false).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::json;
use submission_helper::cluster::manifest::{self, PodSettings};
use submission_helper::domain::Queueing;

use crate::accept::{request_body, submission};
use crate::harness::{
    Backend, Database, Scale, Service, Table, create_jobs, kube_client, rate, submit_batches,
    time_until_jobs, token,
};

const CLIENT_CONCURRENCY: usize = 16;
const PER_REQUEST: usize = 100;
const QUEUE: &str = "bench";

/// Whether Kueue runs beside the control plane (`tests/control-plane.sh kueue-up`).
pub fn available() -> bool {
    std::env::var_os("SH_TEST_KUEUE").is_some_and(|value| !value.is_empty())
}

pub async fn run(kubeconfig: &Path, scale: Scale) -> anyhow::Result<()> {
    let client = kube_client(kubeconfig).await?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    // `lone-`: the test suite's simulated node leaves these alone; admission needs no pod.
    let namespaces = ["service", "direct"]
        .map(|kind| format!("lone-kueue-{kind}-{}", &suffix[suffix.len() - 8..]));
    let namespace_api: Api<Namespace> = Api::all(client.clone());
    for name in &namespaces {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        namespace_api
            .create(&PostParams::default(), &namespace)
            .await?;
        create_queues(&client, name, scale.kueue_jobs).await?;
    }
    let measured = async {
        let service =
            through_service(kubeconfig, &client, &namespaces[0], scale.kueue_jobs).await?;
        let direct = direct(&client, &namespaces[1], scale.kueue_jobs).await?;
        anyhow::Ok((service, direct))
    }
    .await;
    for name in &namespaces {
        let _ = namespace_api
            .delete(name, &DeleteParams::background())
            .await;
        let queues: Api<DynamicObject> =
            Api::all_with(client.clone(), &resource("ClusterQueue", "clusterqueues"));
        let _ = queues
            .delete(&format!("cq-{name}"), &DeleteParams::background())
            .await;
    }
    let (service, direct) = measured?;

    let table = Table::start(
        &format!(
            "Kueue {}: {} submissions to all admitted (SQLite)",
            std::env::var("SH_TEST_KUEUE_VERSION").unwrap_or_default(),
            scale.kueue_jobs
        ),
        &[
            "how",
            "admitted/s",
            "all admitted after",
            "time over the direct client",
        ],
    );
    for (how, took) in [
        ("through the service (--kueue, batches of 100)", service),
        (
            "direct kube client, 16 concurrent creates of suspended Jobs",
            direct,
        ),
    ] {
        table.row(&[
            how.into(),
            rate(scale.kueue_jobs as f64 / took.as_secs_f64()),
            format!("{:.2} s", took.as_secs_f64()),
            format!(
                "{:+.0}%",
                (took.as_secs_f64() / direct.as_secs_f64() - 1.0) * 100.0
            ),
        ]);
    }
    Ok(())
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kueue.x-k8s.io", "v1beta2", kind),
        plural,
    )
}

/// A ClusterQueue of the namespace's own with room for `jobs` payloads, and its LocalQueue.
async fn create_queues(client: &Client, namespace: &str, jobs: usize) -> anyhow::Result<()> {
    let flavors: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("ResourceFlavor", "resourceflavors"),
    );
    let flavor: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
        "metadata": {"name": "default-flavor"}
    }))?;
    match flavors.create(&PostParams::default(), &flavor).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    let cluster_queues: Api<DynamicObject> =
        Api::all_with(client.clone(), &resource("ClusterQueue", "clusterqueues"));
    let cluster_queue: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
        "metadata": {"name": format!("cq-{namespace}")},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "resourceGroups": [{
                "coveredResources": ["cpu", "memory"],
                "flavors": [{"name": "default-flavor", "resources": [
                    {"name": "cpu", "nominalQuota": format!("{}", jobs * 2)},
                    {"name": "memory", "nominalQuota": format!("{}Gi", jobs * 8)}
                ]}]
            }]
        }
    }))?;
    cluster_queues
        .create(&PostParams::default(), &cluster_queue)
        .await?;
    let local_queues: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &resource("LocalQueue", "localqueues"),
    );
    let local_queue: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
        "metadata": {"name": QUEUE, "namespace": namespace},
        "spec": {"clusterQueue": format!("cq-{namespace}")}
    }))?;
    local_queues
        .create(&PostParams::default(), &local_queue)
        .await?;
    Ok(())
}

/// Kueue admitted it: it lets it run.
fn admitted(job: &Job) -> bool {
    job.spec.as_ref().and_then(|spec| spec.suspend) == Some(false)
}

async fn through_service(
    kubeconfig: &Path,
    client: &Client,
    namespace: &str,
    jobs: usize,
) -> anyhow::Result<Duration> {
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
    let service = Service::start_with(
        &database,
        Some((kubeconfig, namespace)),
        &[
            ("SUBMISSION_HELPER_KUEUE", "true"),
            ("SUBMISSION_HELPER_KUEUE_DEFAULT_QUEUE", QUEUE),
        ],
    )
    .await?;
    let took = time_until_jobs(client, namespace, jobs, admitted, || async {
        let submissions = (0..jobs).map(|n| request_body("kueue", n)).collect();
        submit_batches(&service, &secret, submissions, PER_REQUEST).await
    })
    .await;
    service.stop().await?;
    took
}

async fn direct(client: &Client, namespace: &str, jobs: usize) -> anyhow::Result<Duration> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let manifests = (0..jobs)
        .map(|n| {
            let mut submission = submission("kueue", n, "bench")?;
            submission.namespace = namespace.to_owned();
            submission.spec.queueing = Some(Queueing {
                queue: QUEUE.into(),
                priority_class: None,
            });
            Ok(manifest::job(&submission, &PodSettings::default()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    time_until_jobs(client, namespace, jobs, admitted, || {
        create_jobs(&api, manifests, CLIENT_CONCURRENCY)
    })
    .await
}
