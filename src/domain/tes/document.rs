//! The GA4GH Task Execution Service (TES 1.1) objects as they travel: what a client sends to
//! create a task, and the task, its logs and the service's description as answered. Only the
//! fields TES 1.1 defines: clients generated from its document refuse any other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a task is in its life, in TES's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = tesState)]
pub enum TesState {
    Unknown,
    Queued,
    Initializing,
    Running,
    Paused,
    Complete,
    ExecutorError,
    SystemError,
    Canceled,
    Preempted,
    Canceling,
}

impl TesState {
    pub const ALL: [TesState; 11] = [
        TesState::Unknown,
        TesState::Queued,
        TesState::Initializing,
        TesState::Running,
        TesState::Paused,
        TesState::Complete,
        TesState::ExecutorError,
        TesState::SystemError,
        TesState::Canceled,
        TesState::Preempted,
        TesState::Canceling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TesState::Unknown => "UNKNOWN",
            TesState::Queued => "QUEUED",
            TesState::Initializing => "INITIALIZING",
            TesState::Running => "RUNNING",
            TesState::Paused => "PAUSED",
            TesState::Complete => "COMPLETE",
            TesState::ExecutorError => "EXECUTOR_ERROR",
            TesState::SystemError => "SYSTEM_ERROR",
            TesState::Canceled => "CANCELED",
            TesState::Preempted => "PREEMPTED",
            TesState::Canceling => "CANCELING",
        }
    }

    /// The state named exactly so (TES names are case-sensitive).
    pub fn named(name: &str) -> Option<TesState> {
        TesState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// How much of a task an answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum View {
    /// `id` and `state` only.
    #[default]
    Minimal,
    /// All but executors' `stdout`/`stderr`, inputs' `content` and `system_logs`.
    Basic,
    /// Everything.
    Full,
}

impl View {
    pub fn named(name: &str) -> Option<View> {
        match name {
            "MINIMAL" => Some(View::Minimal),
            "BASIC" => Some(View::Basic),
            "FULL" => Some(View::Full),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[schema(as = tesFileType)]
pub enum FileType {
    #[default]
    File,
    Directory,
}

/// A task, as sent to create it and as answered. Every field is optional here so that a missing
/// one is refused by name; `id`, `state`, `logs` and `creation_time` are the service's own and
/// ignored in a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesTask)]
pub struct Task {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub state: Option<TesState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Input>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<Output>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Run in order, each after the previous ended; the first non-zero exit ends the task
    /// unless the executor ignores errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executors: Option<Vec<Executor>>,
    /// Directories shared by the executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub logs: Option<Vec<TaskLog>>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub creation_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesInput)]
pub struct Input {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A `file://` URL under the volume's mount path; ignored when `content` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the executors find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<FileType>,
    /// The file's text, written before the first executor runs (at most 128 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamable: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesOutput)]
pub struct Output {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<FileType>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesResources)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// None is supported: dropped, or refused with `backend_parameters_strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters_strict: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesExecutor)]
pub struct Executor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The program and its arguments, run as they are (no shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// One attempt at running the task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesTaskLog)]
pub struct TaskLog {
    /// One entry per executor that ended.
    pub logs: Vec<ExecutorLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub outputs: Vec<OutputFileLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_logs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesExecutorLog)]
pub struct ExecutorLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    pub exit_code: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = tesOutputFileLog)]
pub struct OutputFileLog {
    pub url: String,
    pub path: String,
    /// The size in bytes, as a string (it may exceed what JSON numbers hold exactly).
    pub size_bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = tesCreateTaskResponse)]
pub struct CreateTaskResponse {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = tesListTasksResponse)]
pub struct ListTasksResponse {
    pub tasks: Vec<Task>,
    /// Ask with this `page_token` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The kind of service, as GA4GH service registries name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ServiceType)]
pub struct ServiceType {
    pub group: String,
    pub artifact: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ServiceOrganization)]
pub struct Organization {
    pub name: String,
    pub url: String,
}

/// What the service is, and where tasks' files may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = tesServiceInfo)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub organization: Organization,
    pub version: String,
    /// The `file://` locations tasks may read and write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<String>,
    #[serde(rename = "tesResources_backend_parameters")]
    pub backend_parameters: Vec<String>,
}
