//! The controller: keeps every stored submission in line with its Job and pods.
//!
//! One watch per kind (kube's `watcher`, which re-lists after a restart or an expired resource
//! version) feeds a reflector, the caches every view reads, and asks for the submission each
//! event belongs to to be reconciled, a moment later ([`super::triggers::COALESCE`]) so that
//! one reconcile reads a burst of them. kube's scheduler holds each submission once, however
//! many events arrive meanwhile, until it is due; at most [`CONCURRENCY`] reconciles run at
//! once and never two of the same submission; one that fails (the database down, the API
//! server unreachable) is scheduled again with backoff until it gets through. After every
//! (re)list, the live submissions the list did not contain are reconciled too: their Job was
//! deleted while nobody watched, and no delete event will ever say so.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::scheduler::scheduler;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::cache::Writers;
use super::cached_pod::Pod;
use super::client::{Cluster, app_selector};
use super::logs;
use super::progress::submission_id;
use super::reconcile::{self, Reconciled, Reconciler};
use super::triggers::{Receiver, Trigger, Triggers};
use super::trim;
use crate::domain::SubmissionId;
use crate::storage::Store;

/// Reconciles running at once.
const CONCURRENCY: usize = 32;

/// Runs the watches and the reconciles until the task is aborted.
pub async fn run(
    reconciler: Arc<Reconciler>,
    triggers: Triggers,
    Receiver(mut incoming): Receiver,
) {
    let cluster = reconciler.cluster.clone();
    let Some(writers) = cluster.take_writers() else {
        tracing::error!("the cluster's caches are already being filled");
        return;
    };
    let (Ok(jobs), Ok(pods)) = (cluster.jobs(), cluster.cached_pods()) else {
        return;
    };
    let Writers {
        jobs: job_writer,
        pods: pod_writer,
        pod_changed,
    } = writers;
    let config = watcher::Config::default().labels(&app_selector());
    let reachability = cluster.reachability().clone();
    let job_events = watcher::watcher(jobs, config.clone())
        .default_backoff()
        .inspect(cluster.metrics().watch_observer("jobs"))
        .inspect(move |item| reachability.observe(item))
        .modify(trim::job)
        .reflect(job_writer);
    let reachability = cluster.reachability().clone();
    let pod_events = watcher::watcher(pods, config)
        .default_backoff()
        .inspect(cluster.metrics().watch_observer("pods"))
        .inspect(move |item| reachability.observe(item))
        .modify(trim::pod)
        .reflect(pod_writer);
    let watch_jobs = follow_jobs(job_events, reconciler.clone(), triggers.clone());
    let watch_pods = follow_pods(
        pod_events,
        reconciler.clone(),
        triggers.clone(),
        pod_changed,
    );
    if cluster.kueue().is_some() {
        cluster.caches().follow_workloads();
    }
    let watch_workloads = follow_workloads(reconciler.clone(), triggers.clone());
    let work = reconcile_forever(&reconciler, &triggers, &mut incoming);
    tokio::join!(watch_jobs, watch_pods, watch_workloads, work);
}

/// Keeps what Kueue's Workloads say of our Jobs, and reconciles the submission of each one
/// that changes, when Jobs are submitted through Kueue. A Workload is matched to its Job by
/// name and checked against the Job's uid (its `kueue.x-k8s.io/job-uid` label).
async fn follow_workloads(reconciler: Arc<Reconciler>, triggers: Triggers) {
    let cluster = &reconciler.cluster;
    if cluster.kueue().is_none() {
        return;
    }
    let Ok(workloads) = super::kueue::workloads(cluster) else {
        return;
    };
    let caches = cluster.caches();
    let events = watcher::watcher(workloads, watcher::Config::default())
        .default_backoff()
        .inspect(cluster.metrics().watch_observer("workloads"));
    let mut events = std::pin::pin!(events);
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = events.next().await {
        let (workload, deleted) = match event {
            Ok(Event::Init) => {
                listed = Some(HashSet::new());
                continue;
            }
            Ok(Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    caches.keep_workloads(&listed);
                }
                continue;
            }
            Ok(Event::InitApply(workload) | Event::Apply(workload)) => (workload, false),
            Ok(Event::Delete(workload)) => (workload, true),
            Err(error) => {
                tracing::warn!(%error, "watching Kueue's Workloads failed; retrying");
                caches.workloads_unavailable();
                continue;
            }
        };
        let Ok(value) = serde_json::to_value(&workload) else {
            continue;
        };
        let Some((job_name, facts)) = super::workloads::read(&value) else {
            continue;
        };
        // Kept after a relist whether or not its Job is cached yet: the Jobs' list may end
        // after the Workloads'.
        if let (Some(listed), false) = (listed.as_mut(), deleted) {
            listed.insert(job_name.clone());
        }
        let Some(job) = caches.job(&job_name) else {
            // Not one of ours, or its Job's event has not arrived yet: the Job's reconcile
            // reads this Workload when it does.
            caches.set_workload(&job_name, (!deleted).then_some(facts));
            continue;
        };
        if facts.job_uid.is_some() && facts.job_uid.as_deref() != job.metadata.uid.as_deref() {
            continue;
        }
        caches.set_workload(&job_name, (!deleted).then_some(facts));
        if let Some(id) = submission_id(job.as_ref()) {
            triggers.observed(id);
        }
    }
}

/// Turns Job events into reconciles.
async fn follow_jobs(
    events: impl Stream<Item = Result<Event<Job>, watcher::Error>>,
    reconciler: Arc<Reconciler>,
    triggers: Triggers,
) {
    let mut events = std::pin::pin!(events);
    let mut listed: Option<HashSet<SubmissionId>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(job)) => {
                if let Some(id) = submission_id(&job) {
                    if let Some(listed) = listed.as_mut() {
                        listed.insert(id);
                    }
                    triggers.observed(id);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    reconcile_unlisted(&reconciler, &triggers, &listed).await;
                }
            }
            Ok(Event::Apply(job)) => {
                if let Some(id) = submission_id(&job) {
                    triggers.observed(id);
                }
            }
            Ok(Event::Delete(job)) => {
                if let Some(id) = submission_id(&job) {
                    reconciler.job_deleted(id, job);
                    triggers.observed(id);
                }
            }
            Err(error) => tracing::warn!(%error, "watching Jobs failed; retrying"),
        }
    }
}

/// Asks for a reconcile of every live submission whose Job a full list did not contain; the
/// reconcile confirms with the API server before it records a Job as deleted.
async fn reconcile_unlisted(
    reconciler: &Reconciler,
    triggers: &Triggers,
    listed: &HashSet<SubmissionId>,
) {
    let mut failures: u32 = 0;
    loop {
        match reconciler
            .store
            .with_live_jobs(reconciler.cluster.namespace())
            .await
        {
            Ok(live) => {
                let here = reconciler.cluster.name();
                for submission in live
                    .iter()
                    .filter(|s| s.cluster.as_deref().is_none_or(|cluster| cluster == here))
                    .filter(|s| !listed.contains(&s.id))
                {
                    triggers.reconcile(submission.id);
                }
                return;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = reconcile::RETRY.after(failures);
                tracing::warn!(%error, ?delay, "could not read the live submissions to reconcile; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Turns pod events into reconciles; notes pods deleted before they ended.
async fn follow_pods(
    events: impl Stream<Item = Result<Event<Pod>, watcher::Error>>,
    reconciler: Arc<Reconciler>,
    triggers: Triggers,
    changed: Arc<tokio::sync::Notify>,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let (pod, deleted) = match event {
            Ok(Event::InitApply(pod) | Event::Apply(pod)) => (pod, false),
            Ok(Event::Delete(pod)) => (pod, true),
            Ok(Event::Init | Event::InitDone) => continue,
            Err(error) => {
                tracing::warn!(%error, "watching pods failed; retrying");
                continue;
            }
        };
        let Some(id) = submission_id(&pod) else {
            continue;
        };
        reconciler
            .cluster
            .caches()
            .index_pod(id, &pod.name_any(), !deleted);
        changed.notify_waiters();
        if deleted && !logs::has_ended(&pod) {
            reconciler.pod_lost(id, pod.name_any());
        } else if deleted && logs::has_started(&pod) {
            reconciler.pod_deleted_after_end(id, Arc::new(pod));
        }
        triggers.observed(id);
    }
}

/// Runs reconciles as the scheduler hands them out, until the trigger channel closes.
async fn reconcile_forever(
    reconciler: &Reconciler,
    triggers: &Triggers,
    incoming: &mut mpsc::UnboundedReceiver<Trigger>,
) {
    let metrics = reconciler.cluster.metrics().clone();
    let caches = reconciler.cluster.caches().clone();
    // Nothing is reconciled before both caches hold a full list: an empty cache would read as
    // every Job deleted.
    while caches.ready().await.is_err() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // When each waiting submission's oldest unreconciled change was seen. (Locks only because
    // the task must be `Send`: one task holds them, never across an await.)
    let waiting: Mutex<HashMap<SubmissionId, Instant>> = Mutex::default();
    let running: Mutex<HashSet<SubmissionId>> = Mutex::default();
    let mut failures: HashMap<SubmissionId, u32> = HashMap::new();
    let requests = futures::stream::poll_fn(|context| incoming.poll_recv(context)).map(|trigger| {
        waiting.lock().entry(trigger.id).or_insert(trigger.seen);
        trigger.request()
    });
    let mut due = std::pin::pin!(scheduler(requests));
    let mut reconciles = FuturesUnordered::new();
    loop {
        metrics
            .queue_depth
            .set(i64::try_from(waiting.lock().len()).unwrap_or(i64::MAX));
        metrics
            .in_flight
            .set(i64::try_from(reconciles.len()).unwrap_or(i64::MAX));
        let room = reconciles.len() < CONCURRENCY;
        tokio::select! {
            next = futures::future::poll_fn(|context| {
                let held = due.as_mut().hold_unless(|id| !running.lock().contains(id));
                std::pin::pin!(held).poll_next(context)
            }), if room => {
                let Some(id) = next else { return };
                let seen = waiting.lock().remove(&id);
                running.lock().insert(id);
                reconciles.push(async move {
                    (id, seen, reconciler.reconcile(id).await)
                });
            }
            Some((id, seen, result)) = reconciles.next(), if !reconciles.is_empty() => {
                running.lock().remove(&id);
                match result {
                    Ok(Reconciled { changed, again_after }) => {
                        failures.remove(&id);
                        metrics.reconciles.get_or_create(&super::metrics::Outcome { result: "ok" }).inc();
                        if let (true, Some(seen)) = (changed, seen) {
                            metrics.lag.observe(seen.elapsed().as_secs_f64());
                        }
                        if let Some(delay) = again_after {
                            triggers.at(id, Instant::now() + delay);
                        }
                    }
                    Err(error) => {
                        metrics.reconciles.get_or_create(&super::metrics::Outcome { result: "error" }).inc();
                        let failed = failures.entry(id).or_insert(0);
                        *failed = failed.saturating_add(1);
                        let delay = reconcile::RETRY.after(*failed);
                        tracing::warn!(submission_id = %id, %error, ?delay, "reconcile failed; retrying");
                        triggers.retry(id, seen.unwrap_or_else(Instant::now), Instant::now() + delay);
                    }
                }
            }
        }
    }
}

/// Starts the controller's parts for a service: the triggers, the archiver and the reconciler.
pub fn start(
    cluster: Cluster,
    store: Store,
    cancels: super::cancels::Cancels,
    pending_timeout: Duration,
) -> (Triggers, impl Future<Output = ()>) {
    let (triggers, receiver) = Triggers::new();
    let archiver = super::archiver::Archiver::new(cluster.clone(), store.clone(), triggers.clone());
    let reconciler = Arc::new(Reconciler::new(
        cluster,
        store,
        archiver,
        cancels,
        pending_timeout,
    ));
    let running = run(reconciler, triggers.clone(), receiver);
    (triggers, running)
}
