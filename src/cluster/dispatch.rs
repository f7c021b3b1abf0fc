//! The dispatcher: creates the Jobs of stored submissions.
//!
//! A submission is committed to the database before anything touches the cluster; this task then
//! creates its Job, a few at a time. The Job name comes from the submission id, so a create the
//! API server already saw answers 409 and counts as done: a retry never runs a payload twice.
//! When the API server cannot be reached, submissions stay `queued` and are created once it is
//! back; when it refuses a Job as invalid, the submission fails with the API server's message.
//! A create refused for another reason (403 from RBAC, a quota or an admission policy; 404 for a
//! missing namespace) is tried again with a backoff of its own submission's, recorded in its row,
//! and fails it after a few attempts (`create_outcomes`); meanwhile the submissions behind it
//! are dispatched.
//!
//! Submissions are taken from the database a few at a time, just before their Jobs are
//! created ([`Store::claim`]), within each user's and batch group's limit of active Jobs, in
//! submit order; the database decides, so the limits hold across replicas.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::client::{Cluster, Created};
use super::clusters::Clusters;
use super::create_outcomes::{Attempt, MAX_BACKOFF, Sent, record_all};
use super::manifest::{self, PodSettings};
use crate::backoff::Backoff;
use crate::domain::State;
use crate::storage::{Claiming, Placing, Queued, StorageError, Store};

/// Jobs created at the same time, per cluster: as many as a plain client needs to reach an API
/// server's throughput (BENCHMARKS.md); its own limits make more pointless.
const CONCURRENCY: usize = 16;
/// Creates' outcomes waiting to be recorded, and recorded together at most. Recording is apart
/// from creating, so a create's slot is free again as soon as the API server answers, not once
/// its row is written (which waits its turn behind the controller's writes); more than
/// [`CONCURRENCY`], so that recording seldom holds up the creates.
const RECORDING: usize = 4 * CONCURRENCY;
/// How long the recording waits for more answers after the first, so that creates answered
/// close together are recorded together. Without it a transaction recorded one or two Jobs
/// (those answered while the last one was written), five statements each: more than the
/// reconciles of those Jobs (BENCHMARKS.md). Their Jobs exist meanwhile; only the `pending`
/// shows this much later, and a round's last answers are recorded as soon as it ends.
const LINGER: Duration = Duration::from_millis(10);
/// Submissions taken from the database per round: enough to keep [`CONCURRENCY`] creates busy,
/// few enough that a claim is soon followed by its create.
const BATCH: u32 = 2 * CONCURRENCY as u32;
/// How the dispatcher waits for a cluster or database it could not reach.
const UNREACHED: Backoff = Backoff::doubling(Duration::from_millis(500), MAX_BACKOFF);
/// How often to look for queued submissions even without a wake-up (e.g. after a restart).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// What the dispatcher obeys besides each submission's own settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Active Jobs per user, for users whose token sets no limit of its own; `None` for none.
    pub per_user: Option<i64>,
}

/// Runs until the task is aborted. The store wakes it when submissions are queued or an active
/// one ends (a slot under a limit may be free); it also looks every few seconds, for what
/// other replicas did.
pub async fn run(clusters: Clusters, store: Store, pods: PodSettings, limits: Limits) {
    let wake = store.dispatcher_wakes();
    let mut failures: u32 = 0;
    let mut failover_due = tokio::time::Instant::now();
    loop {
        // Not at every wake: under load the dispatcher wakes for each batch of submissions.
        if tokio::time::Instant::now() >= failover_due {
            super::failover::round(&clusters, &store).await;
            failover_due = tokio::time::Instant::now() + super::failover::EVERY;
        }
        let pause = if dispatch_queued(&clusters, &store, &pods, limits).await {
            failures = 0;
            until_next_due(clusters.namespace(), &store).await
        } else {
            failures = failures.saturating_add(1);
            UNREACHED.after(failures)
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// How long to sleep when nothing is due: until the first refused submission's retry, at most
/// [`IDLE_POLL`]. A wake-up from a new submission does not retry refused ones early: they are
/// not due, so `queued` passes them over.
async fn until_next_due(namespace: &str, store: &Store) -> Duration {
    match store.next_dispatch_at(namespace).await {
        Ok(Some(due)) => {
            let wait = due.duration_since(Timestamp::now());
            Duration::try_from(wait)
                .unwrap_or(Duration::ZERO)
                .min(IDLE_POLL)
        }
        Ok(None) | Err(_) => IDLE_POLL,
    }
}

/// Creates the Jobs of everything queued and due, [`CONCURRENCY`] at a time, until a claim
/// comes back short. Returns false if the cluster or the database could not be reached (what
/// is left stays queued for the next round).
///
/// The creates are one pipeline: the next batch is claimed as soon as the last one's
/// submissions have all been started, while their creates are still in flight, so the API
/// server always has [`CONCURRENCY`] creates to answer, as a plain client's loop would. Waiting
/// for a whole batch before claiming the next left it a handful at the end of every batch
/// (BENCHMARKS.md).
///
/// Each claimed submission comes with the cluster placement chose for it, among those that
/// take Jobs now; its Job is created there.
async fn dispatch_queued(
    clusters: &Clusters,
    store: &Store,
    pods: &PodSettings,
    limits: Limits,
) -> bool {
    if !clusters.is_configured() {
        return false;
    }
    let placing = &clusters.placing();
    let kueue = clusters.first().kueue();
    // Each API server answers its own creates: as many in flight for each cluster.
    let width = clusters.len();
    let reached = AtomicBool::new(true);
    let reached = &reached;
    let claims = futures::stream::unfold(true, |more| async move {
        if !more || !reached.load(Ordering::Relaxed) {
            return None;
        }
        let wanted = BATCH * u32::try_from(width).unwrap_or(1);
        // Through Kueue, at most `--kueue-max-suspended` Jobs wait in Kueue, and a waiting one
        // counts against no limit: every due submission gets its Job, those under a limit
        // with Kueue's gate on.
        let claiming = match kueue {
            Some(kueue) => Claiming::ThroughKueue {
                max_suspended: kueue.settings.max_suspended,
            },
            None => Claiming::Runnable,
        };
        let claim = claim_next(
            store,
            clusters.namespace(),
            wanted,
            limits,
            claiming,
            placing,
        );
        let claimed = match claim.await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(%error, "a claim of queued submissions did not finish");
                reached.store(false, Ordering::Relaxed);
                return None;
            }
        };
        match claimed {
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => {
                let full = batch.len() == wanted as usize;
                Some((futures::stream::iter(batch), full))
            }
            Err(error) => {
                tracing::error!(%error, "could not read queued submissions");
                reached.store(false, Ordering::Relaxed);
                None
            }
        }
    });
    // Creating and recording run side by side, joined by a channel: a create's slot is free
    // again as soon as the API server answers, and the outcomes answered while a recording
    // transaction runs are recorded together in the next one.
    let (outcomes, mut received) = tokio::sync::mpsc::channel(RECORDING * width);
    let creating = async move {
        let outcomes = &outcomes;
        // Boxed, or the spawned dispatcher is not seen to be `Send` (the compiler cannot
        // prove it for a stream of futures that borrow).
        claims
            .boxed()
            .flatten()
            .map(|queued| async move {
                match clusters.of(&queued.submission) {
                    Some(cluster) => (
                        cluster.clone(),
                        create_one(cluster, store, queued, pods).await,
                    ),
                    // Placed in a cluster the service does not have: cannot happen, as
                    // placement chooses among this service's; the claim lapses.
                    None => (clusters.first().clone(), Attempt::Skipped),
                }
            })
            .buffer_unordered(CONCURRENCY * width)
            .for_each(|outcome| async move {
                // The receiver lives until every sender is gone.
                let _ = outcomes.send(outcome).await;
            })
            .await;
    };
    let recording = async {
        let most = RECORDING * width;
        let mut answered = Vec::with_capacity(most);
        while received.recv_many(&mut answered, most).await > 0 {
            let lingered = tokio::time::sleep(LINGER);
            tokio::pin!(lingered);
            while answered.len() < most {
                let room = most - answered.len();
                tokio::select! {
                    got = received.recv_many(&mut answered, room) => {
                        if got == 0 {
                            break;
                        }
                    }
                    () = &mut lingered => break,
                }
            }
            if !record_all(store, std::mem::take(&mut answered)).await {
                reached.store(false, Ordering::Relaxed);
            }
        }
    };
    futures::join!(creating, recording);
    if kueue.is_some() && reached.load(Ordering::Relaxed) {
        return lift_gates(clusters, store, limits).await;
    }
    reached.load(Ordering::Relaxed)
}

/// Claims the next batch of a round ([`Store::claim_for`]), in a task of its own. The claim
/// holds this process's turn to write until it commits, and the round stops polling its claims
/// while the creates' outcomes wait for the recording, which needs that turn too. Polled only
/// by the round, a claim caught between its statements, or waiting for the turn when it was
/// handed over (tokio's mutex gives it to the next waiter, polled or not), held it for good,
/// and the dispatcher stopped.
fn claim_next(
    store: &Store,
    namespace: &str,
    wanted: u32,
    limits: Limits,
    claiming: Claiming,
    placing: &Placing,
) -> tokio::task::JoinHandle<Result<Vec<Queued>, StorageError>> {
    let (store, namespace, placing) = (store.clone(), namespace.to_owned(), placing.clone());
    tokio::spawn(async move {
        store
            .claim_for(
                &namespace,
                Timestamp::now(),
                wanted,
                limits.per_user,
                claiming,
                &placing,
            )
            .await
    })
}

/// Lifts Kueue's admission gate from the Jobs whose limits have room now, oldest first (the
/// database decides which, [`Store::open_gates`]). A gate that could not be lifted is put back
/// in the books for the next round. Returns false if the cluster or the database could not be
/// reached.
async fn lift_gates(clusters: &Clusters, store: &Store, limits: Limits) -> bool {
    let opened = match store
        .open_gates(clusters.namespace(), Timestamp::now(), limits.per_user)
        .await
    {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, "could not read the Jobs held at Kueue's gate");
            return false;
        }
    };
    let lifted = futures::stream::iter(opened)
        .map(|queued| async move {
            let Some(cluster) = clusters.of(&queued.submission) else {
                return true;
            };
            let job_name = &queued.submission.job_name;
            // The cached Job names the other controllers' gates, if any; one not seen yet is
            // named by its name alone.
            let job = cluster.caches().job(job_name).unwrap_or_else(|| {
                std::sync::Arc::new(Job {
                    metadata: ObjectMeta {
                        name: Some(job_name.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Job::default()
                })
            });
            match cluster.lift_gate(&job).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(submission_id = %queued.submission.id, %error, "could not lift Kueue's gate; will retry");
                    if let Err(error) = store.close_gate(&queued).await {
                        tracing::warn!(%error, "could not put a gate back in the books");
                    }
                    false
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<bool>>()
        .await;
    lifted.into_iter().all(|lifted| lifted)
}

/// Creates one submission's Job and records the outcome as the pipeline does, the two steps
/// in one (for the tests). Returns false if the cluster could not be reached.
#[cfg(test)]
async fn dispatch_one(
    cluster: &Cluster,
    store: &Store,
    queued: Queued,
    pods: &PodSettings,
) -> bool {
    let attempt = create_one(cluster, store, queued, pods).await;
    record_all(store, vec![(cluster.clone(), attempt)]).await
}

/// Creates one submission's Job, if it is still queued.
#[tracing::instrument(skip_all, fields(submission_id = %queued.submission.id))]
async fn create_one(
    cluster: &Cluster,
    store: &Store,
    queued: Queued,
    pods: &PodSettings,
) -> Attempt {
    let Queued {
        submission,
        attempts,
        withdrawals,
    } = queued;
    // The batch was read a while ago, and a submission cancelled since must not get a Job at
    // all (not even one deleted a moment later), nor one rerun since the Job of its earlier
    // run. Only if this process has taken a queued submission out of the queue since the
    // claim is the row read again (a cancel through another replica is caught at recording).
    if store.withdrawals() != withdrawals {
        match store.get(submission.id).await {
            Ok(Some(now))
                if now.progress.state == State::Queued && now.job_name == submission.job_name => {}
            Ok(_) => return Attempt::Skipped,
            Err(error) => {
                tracing::warn!(%error, "could not re-read a queued submission; will retry");
                return Attempt::Unread;
            }
        }
    }
    let mut job = manifest::job(&submission, pods);
    if submission.gated {
        manifest::gate_admission(&mut job);
    }
    let created = cluster.create_job(&job).await;
    // From its submit: a rerun's wait is not a submit's.
    if matches!(created, Ok(Created::Now)) && submission.reruns == 0 {
        let waited = Timestamp::now().duration_since(submission.created_at);
        cluster
            .metrics()
            .submit_to_job_created
            .observe(waited.as_secs_f64().max(0.0));
    }
    Attempt::Sent(Box::new(Sent {
        submission,
        attempts,
        created,
    }))
}

/// Fast tests of how each answer to a create is recorded, against a fake API server (kube's
/// `tower_test` mock, one scenario per answer). The end-to-end suite runs the real one.
#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::time::Duration;

    use http::{Request, Response};
    use kube::Client;
    use kube::client::Body;
    use serde_json::json;
    use tower_test::mock;

    use super::super::create_outcomes::{MAX_ATTEMPTS, retry_delay};
    use super::*;

    use crate::domain::{Progress, Submission, SubmissionRequest, SubmissionSpec, SubmitDefaults};

    struct Scenario {
        store: Store,
        submission: Submission,
        _dir: tempfile::TempDir,
    }

    impl Scenario {
        /// The submission as it is stored now.
        async fn stored(&self) -> Submission {
            self.store
                .get(self.submission.id)
                .await
                .expect("read")
                .expect("stored")
        }
    }

    async fn stored_submission() -> Scenario {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = Store::connect(&url).await.expect("store");
        let request = SubmissionRequest {
            image: Some("busybox".into()),
            command: Some("true".into()),
            ..SubmissionRequest::default()
        };
        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");
        let submission = Submission::new(spec, "default", &crate::domain::Caller::user("alice"));
        store
            .insert(vec![submission.clone()])
            .await
            .expect("insert");
        Scenario {
            store,
            submission,
            _dir: dir,
        }
    }

    /// Dispatches one submission against a fake API server that answers the create with
    /// `status` and `body`, and returns what was stored.
    async fn dispatch_against_fake(status: u16, body: serde_json::Value) -> (Progress, bool) {
        let (progress, reached, _) = dispatch_attempt_against_fake(status, body, 0).await;
        (progress, reached)
    }

    /// As [`dispatch_against_fake`], for a submission refused `attempts` times before.
    async fn dispatch_attempt_against_fake(
        status: u16,
        body: serde_json::Value,
        attempts: i64,
    ) -> (Progress, bool, Scenario) {
        let scenario = stored_submission().await;
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let job_name = scenario.submission.job_name.clone();
        let fake = tokio::spawn(async move {
            let mut handle = pin!(handle);
            let (request, send) = handle.next_request().await.expect("no create was sent");
            assert_eq!(request.method(), http::Method::POST);
            assert_eq!(
                request.uri().path(),
                "/apis/batch/v1/namespaces/default/jobs"
            );
            let sent: serde_json::Value =
                serde_json::from_slice(&request.into_body().collect_bytes().await.expect("body"))
                    .expect("json");
            assert_eq!(sent["metadata"]["name"], job_name);
            let response = Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).expect("json")))
                .expect("response");
            send.send_response(response);
        });

        let reached = dispatch_one(
            &cluster,
            &scenario.store,
            Queued {
                submission: scenario.submission.clone(),
                attempts,
                withdrawals: scenario.store.withdrawals(),
            },
            &PodSettings::default(),
        )
        .await;

        tokio::time::timeout(Duration::from_secs(5), fake)
            .await
            .expect("the fake API server was never called")
            .expect("the fake API server's checks");
        let stored = scenario.stored().await;
        (stored.progress, reached, scenario)
    }

    /// The stored submission as a dispatch batch read it, then cancelled.
    async fn read_then_cancelled() -> (Scenario, Queued) {
        let scenario = stored_submission().await;
        let read_earlier = Queued {
            submission: scenario.submission.clone(),
            attempts: 0,
            withdrawals: scenario.store.withdrawals(),
        };
        scenario
            .store
            .update(scenario.submission.id, |stored| {
                Some(Progress {
                    state: State::Cancelled,
                    ..stored.progress.clone()
                })
            })
            .await
            .expect("cancel");
        (scenario, read_earlier)
    }

    /// Dispatches what a batch read earlier and asserts that no request reached the API server.
    async fn dispatch_sends_nothing(store: &Store, read_earlier: Queued) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());

        let reached = dispatch_one(&cluster, store, read_earlier, &PodSettings::default()).await;

        assert!(reached);
        drop(cluster);
        let mut handle = pin!(handle);
        assert!(
            handle.next_request().await.is_none(),
            "no request reached the API server"
        );
    }

    /// A database that refuses to record the Jobs created (a trigger here; the fault suite
    /// stops a real one) leaves them to the controller's watch: the dispatcher reports the
    /// database unreached at once, rather than trying each Job in turn, and the submission
    /// stays queued with no Job name lost.
    #[tokio::test]
    async fn jobs_created_that_cannot_be_recorded_together_are_left_to_the_controller() {
        let scenario = stored_submission().await;
        let url = format!(
            "sqlite://{}",
            scenario._dir.path().join("db.sqlite").display()
        );
        let beside = sqlx::SqlitePool::connect(&url).await.expect("connect");
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE UPDATE OF state ON submissions \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&beside)
        .await
        .expect("trigger");
        let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let created = Attempt::Sent(Box::new(Sent {
            submission: scenario.submission.clone(),
            attempts: 0,
            created: Ok(Created::Now),
        }));

        let reached = record_all(&scenario.store, vec![(cluster, created)]).await;

        assert!(!reached, "the database refused: not reached");
        let stored = scenario.stored().await;
        assert_eq!(stored.progress.state, State::Queued);
        assert_eq!(stored.job_name, scenario.submission.job_name);
    }

    #[tokio::test]
    async fn a_submission_cancelled_after_the_batch_was_read_gets_no_job() {
        let (scenario, read_earlier) = read_then_cancelled().await;

        dispatch_sends_nothing(&scenario.store, read_earlier).await;
    }

    #[tokio::test]
    async fn a_submission_cancelled_and_rerun_after_the_batch_was_read_gets_no_earlier_job() {
        // Arrange: read for dispatch, then cancelled and rerun (a new Job name, still queued)
        let (scenario, read_earlier) = read_then_cancelled().await;
        let id = scenario.submission.id;
        let filter = crate::storage::Filter {
            ids: vec![id],
            ..crate::storage::Filter::default()
        };
        scenario
            .store
            .rerun_matching(&filter, |submission| Ok(submission.spec.clone()), None)
            .await
            .expect("rerun");

        // Act and assert: no create of the earlier run's Job
        dispatch_sends_nothing(&scenario.store, read_earlier).await;

        // The rerun is still queued for its own Job.
        let stored = scenario.store.get(id).await.expect("read").expect("stored");
        assert_eq!(stored.progress.state, State::Queued);
        assert_eq!(stored.job_name, format!("{}-r1", id.job_name()));
    }

    fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "code": code, "reason": reason, "message": message})
    }

    #[tokio::test]
    async fn a_created_job_makes_the_submission_pending() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sh-x"}});

        let (progress, reached) = dispatch_against_fake(201, job).await;

        assert_eq!((progress.state, reached), (State::Pending, true));
    }

    #[tokio::test]
    async fn a_job_that_already_exists_counts_as_created() {
        let conflict = status(409, "AlreadyExists", "jobs.batch \"sh-x\" already exists");

        let (progress, _) = dispatch_against_fake(409, conflict).await;

        assert_eq!(progress.state, State::Pending);
    }

    #[tokio::test]
    async fn a_job_the_api_server_refuses_fails_with_its_message() {
        let invalid = status(
            422,
            "Invalid",
            "Job.batch \"sh-x\" is invalid: spec.template.spec.containers[0].image: Required value",
        );

        let (progress, reached) = dispatch_against_fake(422, invalid).await;

        assert_eq!((progress.state, reached), (State::Failed, true));
        assert!(
            progress
                .message
                .as_deref()
                .is_some_and(|message| message.contains("containers[0].image: Required value")),
            "{:?}",
            progress.message
        );
        assert!(progress.finished_at.is_some());
    }

    #[tokio::test]
    async fn an_unavailable_api_server_leaves_the_submission_queued_with_the_reason() {
        let unavailable = status(503, "ServiceUnavailable", "etcdserver: leader changed");

        let (progress, reached) = dispatch_against_fake(503, unavailable).await;

        assert_eq!((progress.state, reached), (State::Queued, false));
        assert_eq!(
            progress.message.as_deref(),
            Some("waiting to create the Job: the API server answers with errors")
        );
    }

    #[tokio::test]
    async fn a_refused_create_waits_its_own_backoff_and_is_not_due_meanwhile() {
        let quota = status(
            403,
            "Forbidden",
            "jobs.batch \"sh-x\" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1",
        );

        let (progress, reached, scenario) = dispatch_attempt_against_fake(403, quota, 0).await;

        assert_eq!((progress.state, reached), (State::Queued, true));
        let due_now = scenario
            .store
            .claim("default", Timestamp::now(), 10, None)
            .await
            .expect("queued");
        assert!(
            due_now.is_empty(),
            "a refused submission is not retried at once"
        );
        let later = Timestamp::now()
            .checked_add(Duration::from_secs(2))
            .expect("time");
        let due_later = scenario
            .store
            .claim("default", later, 10, None)
            .await
            .expect("queued");
        assert_eq!(
            due_later
                .iter()
                .map(|queued| queued.attempts)
                .collect::<Vec<_>>(),
            [1]
        );
        let message = progress.message.unwrap_or_default();
        assert!(message.contains("attempt 1 of 6, next in 1 s"), "{message}");
        assert!(message.contains("exceeded quota"), "{message}");
    }

    #[tokio::test]
    async fn a_create_refused_for_the_last_allowed_time_fails_with_the_api_servers_message() {
        let missing = status(404, "NotFound", "namespaces \"gone\" not found");

        let (progress, reached, _) =
            dispatch_attempt_against_fake(404, missing, MAX_ATTEMPTS - 1).await;

        assert_eq!((progress.state, reached), (State::Failed, true));
        let message = progress.message.unwrap_or_default();
        assert!(
            message.contains("refused the Job 6 times") && message.contains("\"gone\" not found"),
            "{message}"
        );
    }

    #[test]
    fn refused_creates_back_off_doubling_to_a_bound() {
        let delays: Vec<u64> = (1..=MAX_ATTEMPTS)
            .map(|attempts| retry_delay(attempts).as_secs())
            .collect();

        assert_eq!(delays, [1, 2, 4, 8, 16, 30]);
        assert_eq!(retry_delay(1000), MAX_BACKOFF);
    }

    #[test]
    fn a_dispatcher_that_reaches_nothing_waits_half_a_second_doubling_to_thirty() {
        let waits: Vec<u128> = (1..=8).map(|n| UNREACHED.after(n).as_millis()).collect();

        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[tokio::test]
    async fn a_job_created_while_its_submission_was_cancelled_is_deleted() {
        let scenario = stored_submission().await;
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let (store, id) = (scenario.store.clone(), scenario.submission.id);
        let fake = tokio::spawn(async move {
            let mut handle = pin!(handle);
            let (create, send) = handle.next_request().await.expect("no create was sent");
            assert_eq!(create.method(), http::Method::POST);
            // The user cancels while the create is on its way.
            let filter = crate::storage::Filter {
                ids: vec![id],
                ..Default::default()
            };
            store
                .cancel_matching(&filter, "cancelled")
                .await
                .expect("cancel");
            let job =
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sh-x"}});
            send.send_response(
                Response::builder()
                    .status(201)
                    .body(Body::from(serde_json::to_vec(&job).expect("json")))
                    .expect("response"),
            );
            let (delete, send) = handle
                .next_request()
                .await
                .expect("the Job was not deleted");
            assert_eq!(delete.method(), http::Method::DELETE);
            assert!(
                delete.uri().path().ends_with(&id.job_name()),
                "{}",
                delete.uri()
            );
            send.send_response(
                Response::builder()
                    .status(200)
                    .body(Body::from(
                        serde_json::to_vec(&status(200, "", "")).expect("json"),
                    ))
                    .expect("response"),
            );
        });

        dispatch_one(
            &cluster,
            &scenario.store,
            Queued {
                submission: scenario.submission.clone(),
                attempts: 0,
                withdrawals: scenario.store.withdrawals(),
            },
            &PodSettings::default(),
        )
        .await;

        tokio::time::timeout(Duration::from_secs(5), fake)
            .await
            .expect("the fake API server was not called as expected")
            .expect("the fake API server's checks");
        let stored = scenario.store.get(id).await.expect("read").expect("stored");
        assert_eq!(stored.progress.state, State::Cancelled);
    }

    /// The round plays no part here: the test polls a claim once, as a round does before the
    /// creates' outcomes fill the channel to the recording, and then never again, as the round
    /// does while they wait. A write (here a cancel; the recording in a round) must still get
    /// its turn: the claim commits on its own and gives the turn back.
    #[tokio::test]
    async fn a_claim_no_longer_polled_still_gives_the_turn_to_write_back() {
        let scenario = stored_submission().await;
        let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let placing = Clusters::from(cluster).placing();
        let mut claim = pin!(claim_next(
            &scenario.store,
            "default",
            BATCH,
            Limits::default(),
            Claiming::Runnable,
            &placing,
        ));
        assert!(
            futures::poll!(&mut claim).is_pending(),
            "a claim waits for the database"
        );

        let filter = crate::storage::Filter {
            ids: vec![scenario.submission.id],
            ..crate::storage::Filter::default()
        };
        let cancel = scenario.store.cancel_matching(&filter, "cancelled");
        let cancelled = tokio::time::timeout(Duration::from_secs(10), cancel).await;

        cancelled
            .expect("the cancel waited for a turn held by a claim no one polled")
            .expect("cancel");
        assert_eq!(scenario.stored().await.progress.state, State::Cancelled);
    }

    /// The creates are one pipeline, against a fake API server that holds every create until
    /// the test answers it: each answer lets the next create in at once, also across the end of
    /// a claimed batch, so [`CONCURRENCY`] creates stay in flight until nothing is left.
    #[tokio::test]
    async fn each_answered_create_lets_the_next_one_in_across_batches() {
        const QUEUED: usize = 2 * BATCH as usize + 8;
        let scenario = stored_submission().await;
        let more: Vec<Submission> = (1..QUEUED)
            .map(|_| {
                Submission::new(
                    scenario.submission.spec.clone(),
                    "default",
                    &crate::domain::Caller::user("alice"),
                )
            })
            .collect();
        scenario.store.insert(more).await.expect("insert");
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let cluster = Cluster::new(Client::new(service, "default"), "default".into());
        let created = || {
            let job =
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sh-x"}});
            Response::builder()
                .status(201)
                .body(Body::from(serde_json::to_vec(&job).expect("json")))
                .expect("response")
        };
        let fake = async {
            let mut handle = pin!(handle);
            let mut in_flight = std::collections::VecDeque::new();
            let mut received = 0;
            while received < QUEUED {
                let next = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{received} creates sent, {} of them unanswered: no next create",
                            in_flight.len()
                        )
                    })
                    .expect("the client went away");
                in_flight.push_back(next.1);
                received += 1;
                // Answer the oldest only once the pipeline is full (or all is sent).
                if in_flight.len() == CONCURRENCY {
                    in_flight
                        .pop_front()
                        .expect("in flight")
                        .send_response(created());
                }
            }
            while let Some(send) = in_flight.pop_front() {
                send.send_response(created());
            }
        };

        let pods = PodSettings::default();
        let clusters = Clusters::from(cluster.clone());
        let (reached, ()) = tokio::join!(
            dispatch_queued(&clusters, &scenario.store, &pods, Limits::default()),
            fake
        );

        assert!(reached);
        let pending = scenario
            .store
            .count_by_state(&[State::Pending])
            .await
            .expect("count");
        assert_eq!(pending, vec![(State::Pending, QUEUED as i64)]);
    }
}
