//! The record the service keeps of each submission: what it runs, whose it is, where its Job
//! is, and how far it has come.

use jiff::Timestamp;

use super::spec::SubmissionSpec;
use crate::domain::identity::Caller;
use crate::domain::state::State;
use crate::domain::submission_id::SubmissionId;

/// What the service knows of a submission's progress, kept current from the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub state: State,
    /// Why it is in that state, when there is more to say (a failure reason, a refused create).
    pub message: Option<String>,
    pub active: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Whether Kueue has admitted its Job (submissions through Kueue only).
    pub admitted: bool,
    /// How often Kueue evicted its admitted Job (preempted it, for one) and put it back in
    /// its queue.
    pub evictions: i64,
}

impl Progress {
    pub fn queued() -> Self {
        Progress {
            state: State::Queued,
            message: None,
            active: 0,
            succeeded: 0,
            failed: 0,
            started_at: None,
            finished_at: None,
            admitted: false,
            evictions: 0,
        }
    }
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub id: SubmissionId,
    pub spec: SubmissionSpec,
    /// The user it belongs to.
    pub owner: String,
    /// The token user who sent it: the owner, or a delegate acting for them.
    pub submitted_by: String,
    pub namespace: String,
    pub job_name: String,
    pub created_at: Timestamp,
    pub progress: Progress,
    /// How many Jobs may be active at once that it counts against.
    pub limits: WorkLimits,
    /// The token whose webhook secret signs its notifications (set when it has a `notify`).
    pub notify_token: Option<String>,
    /// How often it was run again under its id: by a user's rerun, or after a kill for memory.
    pub reruns: i64,
    /// The reruns for memory since its last user's rerun (`retry_policy.on_oom.max_reruns`).
    pub oom_reruns: i64,
    /// Through Kueue: its Job was created with Kueue's admission gate, because it counts against
    /// a limit of concurrent Jobs that had no room yet, and the gate is still on.
    pub gated: bool,
    /// The cluster its Job is created in, once the dispatcher placed it (its `spec.cluster`
    /// if pinned); until then `None`.
    pub cluster: Option<String>,
}

/// A submission's Job: its name, and the cluster (`None`: never placed, so never created) and
/// namespace it was created in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobRef {
    pub id: SubmissionId,
    pub job_name: String,
    pub cluster: Option<String>,
    pub namespace: String,
}

impl Submission {
    /// Its current run's Job.
    pub fn job(&self) -> JobRef {
        JobRef {
            id: self.id,
            job_name: self.job_name.clone(),
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// The limits a submission's dispatch obeys: its user's (as the token it was sent with set
/// it), and its batch group's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkLimits {
    /// `None`: the server's `--max-concurrent`.
    pub user: Option<i64>,
    /// The batch it was sent in and that batch's `max_concurrent`.
    pub group: Option<(String, i64)>,
}

impl Submission {
    /// A new submission of `caller`'s, not yet stored, to run in `namespace`.
    pub fn new(spec: SubmissionSpec, namespace: &str, caller: &Caller) -> Self {
        let id = SubmissionId::new();
        Submission {
            id,
            owner: caller.user.clone(),
            submitted_by: caller.submitted_by.clone(),
            job_name: id.job_name(),
            namespace: namespace.to_owned(),
            created_at: Timestamp::now(),
            progress: Progress::queued(),
            limits: WorkLimits {
                user: caller.max_concurrent,
                group: None,
            },
            notify_token: spec.notify.as_ref().and(caller.token.clone()),
            reruns: 0,
            oom_reruns: 0,
            gated: false,
            cluster: None,
            spec,
        }
    }
}
