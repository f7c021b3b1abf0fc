//! What a submission looks like to clients: the body of a submit's, a get's, a list's and a
//! cancel's answers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{
    Attempt, IDENTIFIER_LABEL, NotifyScope, Resources, RetryPolicy, State, Submission,
};

/// A submission: what was asked for, and what Kubernetes says of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmissionView {
    #[schema(example = "01935f2e-8c4a-7b3d-9e2f-123456789abc")]
    pub id: String,
    pub name: Option<String>,
    /// The user it belongs to.
    pub owner: String,
    /// Who sent it: the owner, or a delegate acting for them.
    pub submitted_by: String,
    pub state: State,
    /// Why it is in this state, when there is more to say: the Job's failure reason, an image
    /// that cannot be pulled, a Job the API server refused.
    pub message: Option<String>,
    /// The Job's name (`kubectl get job NAME`).
    #[schema(example = "sh-01935f2e8c4a7b3d9e2f123456789abc")]
    pub job_name: String,
    pub namespace: String,
    /// The cluster its Job is created in (of the service's `--cluster`s): the one it asked for,
    /// or the one placement chose when its Job was created; absent until then.
    #[schema(example = "onsite")]
    pub cluster: Option<String>,
    /// Pods running now.
    pub active: i64,
    /// Pods that succeeded.
    pub succeeded: i64,
    /// Pods that failed.
    pub failed: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
    pub volume_claim: Option<String>,
    pub mount_path: Option<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub backoff_limit: i32,
    /// What a failed pod means by its exit code (empty: every failure counts).
    pub retry_policy: RetryPolicy,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    /// The task identifier (the label `identifier`), if it has one.
    pub identifier: Option<String>,
    /// The payload container's name.
    #[schema(example = "analyze")]
    pub tool: String,
    /// The submissions that must succeed before it runs.
    pub depends_on: Vec<String>,
    /// Where each change of its state is POSTed (see `notify`); null when nowhere.
    #[schema(example = "https://portal.example.org/hooks/submissions")]
    pub notify_url: Option<String>,
    /// Which changes `notify_url` is sent: `all` or only the `final` one; null without a
    /// `notify_url`.
    pub notify: Option<NotifyScope>,
    /// Each pod that ended, oldest first: only for one submission (`GET
    /// /v1/submissions/{id}`, and the answer to a single submit), not in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
    /// Where it waits: in Kueue, on a server that submits through Kueue (`--kueue`); in the
    /// service's own queue while `queued` (only for one submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueView>,
    /// How often it was run again under its id (`POST /v1/submissions/{id}/rerun`, or after
    /// a kill for memory under `retry_policy.on_oom`); each run has its own Job (`...-r1`).
    #[serde(default)]
    pub reruns: i64,
}

/// A submission's place in a queue: Kueue's, or the service's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// The Kueue LocalQueue it waits in; null for the service's own queue.
    #[schema(example = "analysis")]
    pub name: Option<String>,
    /// Its Kueue WorkloadPriorityClass, if it names one.
    pub priority_class: Option<String>,
    /// Whether Kueue has admitted its Job (it may run).
    pub admitted: bool,
    /// Its place (0 is next), only for one submission (`GET /v1/submissions/{id}`) while it
    /// waits: in the LocalQueue, from Kueue's visibility API (null when that does not answer);
    /// in the service's own queue, among its user's queued submissions. Null otherwise.
    pub position: Option<i64>,
    /// How often Kueue evicted its Job (preempted it, for one) and put it back in the queue;
    /// an eviction uses no retry.
    pub evictions: i64,
}

impl SubmissionView {
    /// Says that `cluster` has not answered since `since`, on a submission whose Job is live:
    /// its state is as last seen, neither failed nor cancelled for that.
    pub fn while_unanswered(&mut self, cluster: &str, since: Timestamp) {
        if !matches!(self.state, State::Pending | State::Running) {
            return;
        }
        let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
        let note = format!("the cluster {cluster} has not answered since {since}; as last seen");
        self.message = Some(match self.message.take() {
            Some(message) => format!("{note}: {message}"),
            None => note,
        });
    }
}

impl SubmissionView {
    /// Says that `cluster`, where its Job is, is no longer one of the service's, on a live
    /// submission: it is neither followed nor failed for that, and stays as last seen.
    pub fn while_unconfigured(&mut self, cluster: &str) {
        self.as_last_seen(&format!(
            "the cluster {cluster} is no longer configured here"
        ));
    }

    /// Says `why` a live submission is not followed: its state is as last seen.
    pub fn as_last_seen(&mut self, why: &str) {
        if !matches!(self.state, State::Pending | State::Running) {
            return;
        }
        let note = format!("{why}; as last seen");
        self.message = Some(match self.message.take() {
            Some(message) => format!("{note}: {message}"),
            None => note,
        });
    }
}

impl From<Submission> for SubmissionView {
    fn from(submission: Submission) -> Self {
        let Submission {
            id,
            spec,
            owner,
            submitted_by,
            namespace,
            job_name,
            created_at,
            progress,
            limits: _,
            notify_token: _,
            reruns,
            oom_reruns: _,
            gated: _,
            cluster,
        } = submission;
        let queue = spec.queueing.map(|queueing| QueueView {
            name: Some(queueing.queue),
            priority_class: queueing.priority_class,
            admitted: progress.admitted,
            position: None,
            evictions: progress.evictions,
        });
        let (volume_claim, mount_path) = match spec.volume {
            Some(volume) => (Some(volume.claim), Some(volume.mount_path)),
            None => (None, None),
        };
        SubmissionView {
            id: id.to_string(),
            name: spec.name,
            owner,
            submitted_by,
            state: progress.state,
            message: progress.message,
            job_name,
            namespace,
            cluster: cluster.or_else(|| spec.cluster.clone()),
            active: progress.active,
            succeeded: progress.succeeded,
            failed: progress.failed,
            created_at,
            started_at: progress.started_at,
            finished_at: progress.finished_at,
            image: spec.image,
            command: spec.command,
            registry_secret: spec.registry_secret,
            volume_claim,
            mount_path,
            env: spec.env,
            identifier: spec.labels.get(IDENTIFIER_LABEL).cloned(),
            labels: spec.labels,
            resources: spec.resources,
            backoff_limit: spec.backoff_limit,
            retry_policy: spec.retry_policy,
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            tool: spec.tool,
            depends_on: spec.depends_on.iter().map(ToString::to_string).collect(),
            notify_url: spec.notify.as_ref().map(|notify| notify.url.clone()),
            notify: spec.notify.map(|notify| notify.scope),
            attempts: None,
            queue,
            reruns,
        }
    }
}
