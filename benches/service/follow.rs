//! Many followers of one pod's log: how many streams the service opens to the API server for
//! them (one is the target), what they cost in memory, and how soon a line written by the
//! payload reaches every follower.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use serde_json::json;

use crate::harness::{
    Backend, Database, LoneNamespace, Scale, Service, Table, expect_success, ms, token,
};
use crate::live;

/// Follows each token user may keep open (the service's default cap).
const FOLLOWS_PER_USER: usize = 20;
/// Lines the payload writes, one every 100 ms.
const LINES: usize = 50;

pub async fn run(kubeconfig: &Path, node_sim: &Path, scale: Scale) -> anyhow::Result<()> {
    let lone = LoneNamespace::create(kubeconfig, node_sim, "follow", 1).await?;
    let measured = measure(kubeconfig, &lone, scale).await;
    lone.remove().await;
    measured
}

async fn measure(kubeconfig: &Path, lone: &LoneNamespace, scale: Scale) -> anyhow::Result<()> {
    let namespace = lone.name.as_str();
    let followers = scale.followers;
    let database = Database::create(Backend::Sqlite).await?;
    let owner = token(&database, "owner", false).await?;
    // Admins see every submission; the cap on follows is per token user, so the followers are
    // spread over as many admins as it takes.
    let mut admins = Vec::new();
    for user in 0..followers.div_ceil(FOLLOWS_PER_USER) {
        admins.push(token(&database, &format!("admin-{user}"), true).await?);
    }
    let service = Service::start(&database, Some((kubeconfig, namespace))).await?;
    // The payload starts writing once told to (a file appears), so every follower is
    // connected before the first line.
    let go = lone.work.path().join("go");
    let command = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; for i in $(seq 1 {LINES}); do echo \"$i $(date +%s%N)\"; sleep 0.1; done",
        go.display()
    );
    let submitted: serde_json::Value = expect_success(
        service
            .http
            .post(format!("{}/v1/submissions", service.url))
            .bearer_auth(&owner)
            .json(&json!({"image": "busybox", "command": command})),
    )
    .await?
    .json()
    .await?;
    let id = submitted["id"].as_str().context("no id")?.to_owned();
    let memory_before = service.memory()?;
    let reads_before = api_reads(&service).await?;

    let url = format!("{}/v1/submissions/{id}/logs?follow=true", service.url);
    let mut streams = Vec::new();
    for follower in 0..followers {
        let response = expect_success(
            service
                .http
                .get(&url)
                .bearer_auth(&admins[follower / FOLLOWS_PER_USER]),
        )
        .await
        .with_context(|| format!("follower {follower}"))?;
        streams.push(response);
    }
    let memory_connected = service.memory()?;
    // Counted with every follower connected and before the pod ends (its end archives the log).
    let opened = api_reads(&service).await? - reads_before;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|response| tokio::spawn(arrivals(response)))
        .collect();
    std::fs::write(&go, b"go")?;
    let mut latest_per_line = vec![Duration::ZERO; LINES];
    for reader in readers {
        let arrivals = reader.await??;
        if arrivals.len() != LINES {
            bail!("a follower got {} of {LINES} lines", arrivals.len());
        }
        for (line, delay) in arrivals.into_iter().enumerate() {
            latest_per_line[line] = latest_per_line[line].max(delay);
        }
    }
    let memory_after = service.memory()?;
    service.stop().await?;
    latest_per_line.sort();
    let quantile = |q: f64| latest_per_line[((LINES as f64 * q) as usize).min(LINES - 1)];

    let table = Table::start(
        &format!("Log follow: {followers} followers of one pod ({LINES} lines)"),
        &["figure", "value"],
    );
    for (figure, value) in [
        (
            "streams opened to the API server (target 1)",
            format!("{opened}"),
        ),
        (
            "a line written to read by every follower, p50 / p99 / max",
            format!(
                "{} / {} / {}",
                ms(quantile(0.5)),
                ms(quantile(0.99)),
                ms(latest_per_line[LINES - 1])
            ),
        ),
        (
            "service RSS before / with every follower connected / after (peak)",
            format!(
                "{:.1} / {:.1} / {:.1} MiB ({:.1} MiB)",
                memory_before.now_mib,
                memory_connected.now_mib,
                memory_after.now_mib,
                memory_after.peak_mib
            ),
        ),
    ] {
        table.row(&[figure.into(), value]);
    }
    Ok(())
}

/// How long after it was written each line reached this follower.
async fn arrivals(response: reqwest::Response) -> anyhow::Result<Vec<Duration>> {
    let mut delays = Vec::new();
    let mut pending = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk?);
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
            let text = String::from_utf8_lossy(&line);
            let written: u64 = text
                .split_whitespace()
                .nth(1)
                .context("a line without its time")?
                .parse()?;
            delays.push(now.saturating_sub(Duration::from_nanos(written)));
        }
    }
    Ok(delays)
}

/// Reads the service sent the API server (lists, gets, log streams), from its `/metrics`.
async fn api_reads(service: &Service) -> anyhow::Result<f64> {
    let metrics = live::metrics(service).await?;
    Ok(metrics
        .get("submission_helper_apiserver_requests_total{verb=\"get\"}")
        .copied()
        .unwrap_or(0.0))
}
