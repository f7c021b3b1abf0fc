//! Thousands of Jobs live at once, then ending at once: what the controller costs the API server
//! at rest, and how soon each Job's end is recorded.
//!
//! Simulated nodes of the benchmark's own run every payload: `flock -s` on a file the
//! benchmark holds locked, so all of them run until it lets go, then end within moments of
//! each other (the hardest moment for a controller: thousands of events at once).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::TryStreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::harness::{
    Backend, Database, LoneNamespace, Scale, Service, Table, expect_success, ms, submit_batches,
    token,
};

/// Submissions per batch request.
const PER_REQUEST: usize = 500;

pub async fn run(kubeconfig: &Path, node_sim: &Path, scale: Scale) -> anyhow::Result<()> {
    let lone = LoneNamespace::create(kubeconfig, node_sim, "live", scale.live).await?;
    let measured = measure(kubeconfig, &lone, scale).await;
    lone.remove().await;
    measured
}

async fn measure(kubeconfig: &Path, lone: &LoneNamespace, scale: Scale) -> anyhow::Result<()> {
    let (client, namespace) = (&lone.client, lone.name.as_str());
    let live = scale.live;
    let lock = lone.work.path().join("gate.lock");
    std::fs::write(&lock, b"")?;
    let mut holder = hold_lock(&lock).await?;
    let database = Database::create(Backend::Sqlite).await?;
    let secret = token(&database, "bench", false).await?;
    let service = Service::start(&database, Some((kubeconfig, namespace))).await?;

    let started = Instant::now();
    let submissions = (0..live)
        .map(|n| {
            json!({
                "image": "busybox",
                "command": format!("exec flock -s '{}' true", lock.display()),
                "labels": {"campaign": "live", "n": n.to_string()},
            })
        })
        .collect();
    submit_batches(&service, &secret, submissions, PER_REQUEST).await?;
    let running_after = wait_for(
        &service,
        &secret,
        "running",
        live,
        Duration::from_secs(1800),
    )
    .await
    .context("every payload running")?;
    let all_running = started.elapsed();
    let memory_live = service.memory()?;

    // At rest: every payload runs, nothing changes.
    let before = metrics(&service).await?;
    tokio::time::sleep(scale.rest).await;
    let after = metrics(&service).await?;
    let per_minute = |series: &str| {
        let delta =
            after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0);
        delta * 60.0 / scale.rest.as_secs_f64()
    };

    // Every payload ends at once; an independent watch notes when each Job is complete.
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let (listed, listed_rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn(complete_times(api, listed));
    listed_rx
        .await
        .context("the watch stopped before its first list")?;
    holder.kill().await?;
    let released = Instant::now();
    let (recorded, poll) = record_times(&service, &secret, live, Duration::from_secs(1800)).await?;
    let all_recorded = released.elapsed();
    let completed = watch.await??;
    let last_complete = completed.values().max().map_or(Duration::ZERO, |last| {
        last.saturating_duration_since(released)
    });
    let memory_after = service.memory()?;
    let final_metrics = metrics(&service).await?;
    service.stop().await?;

    let mut lags: Vec<Duration> = recorded
        .iter()
        .filter_map(|(name, recorded)| {
            let complete = completed.get(name)?;
            Some(recorded.saturating_duration_since(*complete))
        })
        .collect();
    lags.sort();
    if lags.len() < live {
        bail!(
            "only {} of {live} Jobs were seen complete and recorded",
            lags.len()
        );
    }
    let quantile = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];

    let table = Table::start(
        &format!("Controller: {live} Jobs live at once, then ending at once (SQLite)"),
        &["figure", "value"],
    );
    let rows = [
        (
            "submitted to all running".to_owned(),
            format!(
                "{:.1} s ({running_after} running)",
                all_running.as_secs_f64()
            ),
        ),
        (
            format!(
                "API server requests per minute at rest ({} s)",
                scale.rest.as_secs()
            ),
            format!(
                "{:.1} reads, {:.1} watches, {:.1} writes",
                per_minute("get"),
                per_minute("watch"),
                per_minute("create") + per_minute("delete") + per_minute("update")
            ),
        ),
        (
            "Job complete to recorded, p50 / p99 / max (independent watch vs. service list)".into(),
            format!(
                "{} / {} / {}",
                ms(quantile(0.5)),
                ms(quantile(0.99)),
                ms(lags[lags.len() - 1])
            ),
        ),
        (
            "the service's own lag (event to recorded), p50 / p99 from its histogram".into(),
            format!(
                "{} / {}",
                histogram_quantile(&final_metrics, 0.5),
                histogram_quantile(&final_metrics, 0.99)
            ),
        ),
        (
            "lock released to the last Job complete (the job controller's pace) / to the last recorded".into(),
            format!(
                "{:.1} s / {:.1} s",
                last_complete.as_secs_f64(),
                all_recorded.as_secs_f64()
            ),
        ),
        (
            "one poll of the succeeded list (the resolution of the lag above), mean".into(),
            ms(poll),
        ),
        (
            "reconciles (ok / error)".into(),
            format!(
                "{} / {}",
                final_metrics
                    .get("submission_helper_reconciles_total{result=\"ok\"}")
                    .copied()
                    .unwrap_or(0.0),
                final_metrics
                    .get("submission_helper_reconciles_total{result=\"error\"}")
                    .copied()
                    .unwrap_or(0.0)
            ),
        ),
        (
            "service RSS with all live / after all ended (peak)".into(),
            format!(
                "{:.1} MiB / {:.1} MiB ({:.1} MiB)",
                memory_live.now_mib, memory_after.now_mib, memory_after.peak_mib
            ),
        ),
    ];
    for (figure, value) in rows {
        table.row(&[figure, value]);
    }
    Ok(())
}

/// A child process that holds an exclusive lock on `lock` until it is killed (`--no-fork`:
/// the process that holds the lock is the one killed, not a parent of it).
async fn hold_lock(lock: &Path) -> anyhow::Result<tokio::process::Child> {
    let holder = Command::new("flock")
        .args(["--no-fork", "-x"])
        .arg(lock)
        .args(["sleep", "86400"])
        .kill_on_drop(true)
        .spawn()
        .context("flock")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let free = std::process::Command::new("flock")
            .args(["-n", "-s"])
            .arg(lock)
            .arg("true")
            .status()?
            .success();
        if !free {
            return Ok(holder);
        }
        if Instant::now() > deadline {
            bail!("flock did not take the lock");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When each Job was first seen complete, by name.
async fn complete_times(
    api: Api<Job>,
    listed: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut listed = Some(listed);
    let mut complete = HashMap::new();
    let mut total = 0;
    let mut stream = std::pin::pin!(watcher(
        api,
        watcher::Config::default().labels("app=submission-helper"),
    ));
    while let Some(event) = stream.try_next().await? {
        match event {
            watcher::Event::InitApply(_) => total += 1,
            watcher::Event::InitDone => {
                if let Some(listed) = listed.take() {
                    let _ = listed.send(());
                }
            }
            watcher::Event::Apply(job) => {
                let ended = job
                    .status
                    .as_ref()
                    .and_then(|status| status.conditions.as_ref())
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c.type_ == "Complete" && c.status == "True")
                    });
                if let (true, Some(name)) = (ended, job.metadata.name) {
                    complete.entry(name).or_insert_with(Instant::now);
                    if complete.len() >= total {
                        return Ok(complete);
                    }
                }
            }
            watcher::Event::Init | watcher::Event::Delete(_) => {}
        }
    }
    bail!("the watch ended after {} complete Jobs", complete.len())
}

/// Polls the service until `count` submissions are `state`; returns how many there were.
pub async fn wait_for(
    service: &Service,
    secret: &str,
    state: &str,
    count: usize,
    limit: Duration,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = list(service, secret, state).await?.len();
        if seen >= count {
            return Ok(seen);
        }
        if let Some(failed) = list(service, secret, "failed").await?.first() {
            bail!("a submission failed while waiting for {count} to be {state}: {failed}");
        }
        if Instant::now() > deadline {
            bail!("{seen} of {count} submissions are {state} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// When each Job's submission was first listed as succeeded, by Job name, and how long one
/// poll of the list took on average.
async fn record_times(
    service: &Service,
    secret: &str,
    count: usize,
    limit: Duration,
) -> anyhow::Result<(HashMap<String, Instant>, Duration)> {
    let deadline = Instant::now() + limit;
    let mut recorded = HashMap::new();
    let (mut polls, mut polling) = (0u32, Duration::ZERO);
    while recorded.len() < count {
        let poll = Instant::now();
        let succeeded = list(service, secret, "succeeded").await?;
        polling += poll.elapsed();
        polls += 1;
        for submission in succeeded {
            if let Some(name) = submission["job_name"].as_str() {
                recorded.entry(name.to_owned()).or_insert_with(Instant::now);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {count} recorded as succeeded after {limit:?}",
                recorded.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((recorded, polling / polls.max(1)))
}

/// Every submission in `state`, through the pages of the list.
async fn list(service: &Service, secret: &str, state: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/submissions?state={state}&limit=1000", service.url);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = expect_success(service.http.get(url).bearer_auth(secret))
            .await?
            .json()
            .await?;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

/// Every series of the service's `/metrics`.
pub async fn metrics(service: &Service) -> anyhow::Result<HashMap<String, f64>> {
    let text = expect_success(service.http.get(format!("{}/metrics", service.url)))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// The bucket bound below which `q` of the lag histogram's observations fall.
fn histogram_quantile(metrics: &HashMap<String, f64>, q: f64) -> String {
    let count = metrics
        .get("submission_helper_reconcile_lag_seconds_count")
        .copied()
        .unwrap_or(0.0);
    let mut buckets: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|(series, value)| {
            let bound = series
                .strip_prefix("submission_helper_reconcile_lag_seconds_bucket{le=\"")?
                .strip_suffix("\"}")?;
            Some((bound.parse().unwrap_or(f64::INFINITY), *value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
        .iter()
        .find(|(_, below)| *below >= q * count)
        .map_or("n/a".into(), |(bound, _)| {
            format!("≤ {:.0} ms", bound * 1000.0)
        })
}
