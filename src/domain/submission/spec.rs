//! What to run, complete and valid: the specification a request is parsed into and a
//! submission keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::queueing::Queueing;
use super::resources::Resources;
use super::retry_policy::RetryPolicy;
use super::tes_plan::TesPlan;
use crate::domain::notify::Notify;
use crate::domain::submission_id::SubmissionId;

/// A volume claim and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub claim: String,
    pub mount_path: String,
}

/// What to run, complete and valid: every default resolved at submit time, so a later change of
/// the server's flags never changes a stored submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionSpec {
    pub name: Option<String>,
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
    pub volume: Option<Volume>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub backoff_limit: i32,
    /// What a failed pod means, by its exit code (the Job's pod failure policy).
    #[serde(default, skip_serializing_if = "RetryPolicy::is_empty")]
    pub retry_policy: RetryPolicy,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    /// The payload container's name (submissions stored before it was chosen: `payload`).
    #[serde(default = "default_tool")]
    pub tool: String,
    /// The submissions that must succeed before this one runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<SubmissionId>,
    /// Where its state changes are sent, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// The Kueue queue it waits in, on a server that submits through Kueue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queueing: Option<Queueing>,
    /// A TES task's executors and files; its Job runs these instead of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tes: Option<TesPlan>,
    /// The cluster it must run in, of those the service has (`--cluster`); any with room if
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// The container name when the command names no program to call it after.
pub const DEFAULT_TOOL: &str = "payload";

pub(crate) fn default_tool() -> String {
    DEFAULT_TOOL.into()
}
