//! A whole campaign cancelled while its payloads run: how long the cancel takes to answer, and
//! how soon every Job and pod is gone from the cluster.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::harness::{Backend, Database, Scale, Service, Table, expect_success, ms, token};
use crate::live::{PODS_PER_NODE, node_name, wait_for};

/// Submissions per batch request.
const PER_REQUEST: usize = 500;

pub async fn run(kubeconfig: &Path, node_sim: &Path, scale: Scale) -> anyhow::Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let namespace = format!("lone-bench-cancel-{}", &suffix[suffix.len() - 8..]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    let work = tempfile::tempdir()?;
    let nodes = scale.cancel_live.div_ceil(PODS_PER_NODE);
    let measured = {
        let mut running_nodes = Vec::new();
        for node in 0..nodes {
            running_nodes.push(
                Command::new(node_sim)
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args([
                        "--node-name",
                        &node_name(node, &namespace),
                        "--namespace",
                        &namespace,
                    ])
                    .arg("--work-dir")
                    .arg(work.path().join(format!("node-{node}")))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .context("start node-sim")?,
            );
        }
        measure(kubeconfig, &client, &namespace, scale).await
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::background())
        .await;
    let node_api: Api<Node> = Api::all(client);
    for node in 0..nodes {
        let _ = node_api
            .delete(&node_name(node, &namespace), &DeleteParams::default())
            .await;
    }
    measured
}

async fn measure(
    kubeconfig: &Path,
    client: &Client,
    namespace: &str,
    scale: Scale,
) -> anyhow::Result<()> {
    let count = scale.cancel_live;
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
    let service = Service::start(&database, Some((kubeconfig, namespace))).await?;
    for first in (0..count).step_by(PER_REQUEST) {
        let submissions: Vec<Value> = (first..(first + PER_REQUEST).min(count))
            .map(|_| {
                json!({"image": "busybox", "command": "exec sleep 3600",
                       "labels": {"campaign": "doomed"}})
            })
            .collect();
        expect_success(
            service
                .http
                .post(format!("{}/v1/submissions/batch", service.url))
                .bearer_auth(&secret)
                .json(&json!({ "submissions": submissions })),
        )
        .await
        .context("submit")?;
    }
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
    let cancelled = answer["cancelled"].as_array().map_or(0, Vec::len);
    if cancelled != count {
        bail!("the cancel cancelled {cancelled} of {count}");
    }
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
            bail!("Jobs or pods of cancelled submissions still there after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let memory = service.memory()?;
    service.stop().await?;

    let table = Table::start(
        &format!("Cancel: one campaign of {count} running payloads (SQLite)"),
        &["figure", "value"],
    );
    let seconds =
        |took: Option<Duration>| format!("{:.1} s", took.unwrap_or_default().as_secs_f64());
    for (figure, value) in [
        ("the cancel answered after", ms(answered)),
        (
            "every Job gone from the API server after",
            seconds(jobs_gone),
        ),
        ("every pod gone after", seconds(pods_gone)),
        (
            "service RSS after (peak)",
            format!("{:.1} MiB ({:.1} MiB)", memory.now_mib, memory.peak_mib),
        ),
    ] {
        table.row(&[figure.into(), value]);
    }
    Ok(())
}
