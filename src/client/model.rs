//! What the client reads of the API's answers: only the fields it shows, each optional or
//! defaulted, so a newer server's additions never break an older client (`-o json` prints the
//! answers as they came, with every field).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use crate::domain::State;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Submission {
    pub id: String,
    pub name: Option<String>,
    pub owner: String,
    pub submitted_by: String,
    pub state: String,
    pub message: Option<String>,
    pub job_name: String,
    pub namespace: String,
    /// The cluster its Job is in; `None` until the server placed it, and from an older server
    /// that runs on one cluster only.
    pub cluster: Option<String>,
    pub active: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
    pub volume_claim: Option<String>,
    pub mount_path: Option<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub backoff_limit: Option<i64>,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i64>,
    /// Only in the answer for one submission.
    pub attempts: Vec<Attempt>,
    /// Where it waits in Kueue, on a server that submits through Kueue.
    pub queue: Option<Queue>,
    /// How often it was run again (each run in its own Job).
    pub reruns: i64,
}

/// A submission's place in Kueue.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Queue {
    /// The Kueue LocalQueue; `None` for the service's own queue.
    pub name: Option<String>,
    pub priority_class: Option<String>,
    pub admitted: bool,
    pub position: Option<i64>,
    pub evictions: i64,
}

impl Queue {
    /// The queue in a few words: `analysis (priority high), position 0, evicted once`.
    pub fn summary(&self) -> String {
        let mut text = self
            .name
            .clone()
            .unwrap_or_else(|| "the service's queue".to_owned());
        if let Some(class) = &self.priority_class {
            text.push_str(&format!(" (priority {class})"));
        }
        if self.admitted {
            text.push_str(", admitted");
        } else if let Some(position) = self.position {
            text.push_str(&format!(", position {position}"));
        }
        match self.evictions {
            0 => {}
            1 => text.push_str(", evicted once"),
            n => text.push_str(&format!(", evicted {n} times")),
        }
        text
    }
}

/// A pod of a submission as it ended.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Attempt {
    pub pod: String,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub memory: Option<String>,
    pub disrupted: bool,
    pub counted: bool,
}

impl Submission {
    /// The state, if it is one this client knows.
    pub fn known_state(&self) -> Option<State> {
        self.state.parse().ok()
    }

    /// Whether it has ended: a state this client does not know is taken as not yet.
    pub fn is_final(&self) -> bool {
        self.known_state().is_some_and(State::is_final)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Page {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Items {
    pub items: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Batch {
    pub submissions: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Cancelled {
    pub cancelled: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reran {
    pub rerun: Vec<serde_json::Value>,
    pub also_rerun: Vec<serde_json::Value>,
    pub not_rerun: Vec<NotRerun>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NotRerun {
    pub id: String,
    pub reason: String,
}

/// An event of `/v1/submissions/{id}/cluster-events`: what Kubernetes recorded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventRow {
    pub object: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub from: String,
    pub count: i32,
    pub last_seen: Option<Timestamp>,
}

/// A row of `/v1/jobs`: kubectl's columns, computed by the server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct JobRow {
    pub name: String,
    /// The cluster it is in; empty from an older server, which has one only.
    pub cluster: String,
    pub submission_id: Option<String>,
    pub status: String,
    pub completions: String,
    pub duration: String,
    pub age: String,
    pub active: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// A row of `/v1/pods`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PodRow {
    pub name: String,
    /// The cluster it is in; empty from an older server.
    pub cluster: String,
    pub submission_id: Option<String>,
    pub ready: String,
    pub status: String,
    pub restarts: i64,
    pub age: String,
}

/// A pod of `/v1/submissions/{id}/pods`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PodDetail {
    pub name: String,
    pub phase: String,
    pub status: String,
    pub ready: String,
    pub restarts: i64,
    pub node: Option<String>,
    pub start_time: Option<Timestamp>,
    pub containers: Vec<ContainerDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ContainerDetail {
    pub name: String,
    pub state: String,
    pub ready: bool,
    pub restart_count: i64,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i64>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One item of an answer, as this client reads it.
pub fn read<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, super::error::ClientError> {
    T::deserialize(value).map_err(|error| super::error::ClientError::Unreadable(error.to_string()))
}
