//! What the Job of a TES task runs, decided once when the task is created and kept in its
//! specification: the executors in order and the files they find.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A TES task's executors and files, as its pod needs them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TesPlan {
    pub executors: Vec<ExecutorPlan>,
    /// Written before the first executor, each at its path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline_inputs: Vec<InlineInput>,
    /// Files or directories of the volume claim shown at another path, read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_inputs: Vec<ClaimInput>,
    /// Empty directories every executor shares (with the step that copies outputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Where each output is written, and where on the claim it belongs, in the task's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputPlan>,
}

/// One output: copied from `path` to `claim_path` after the last executor when they differ,
/// then its size logged. With `prefix`, `path` is a pattern and `claim_path` a folder: each
/// match goes to that folder plus what follows `prefix` in its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPlan {
    pub path: String,
    /// The URL's path, as the claim is mounted.
    pub claim_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub directory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One executor: its own image, argv (no shell), and where its streams go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecutorPlan {
    pub image: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineInput {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInput {
    pub path: String,
    /// The file's path relative to the claim's root.
    pub sub_path: String,
    /// As the task named it, to say which input is missing.
    #[serde(default)]
    pub url: String,
}
