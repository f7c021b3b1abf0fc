//! CPU and memory: as a request asks for them, as a submission keeps them, as clients see them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// CPU and memory for the payload container, as Kubernetes quantities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Amounts::is_empty")]
    pub requests: Amounts,
    #[serde(default, skip_serializing_if = "Amounts::is_empty")]
    pub limits: Amounts,
}

/// An amount of CPU (`500m`, `2`) and memory (`512Mi`, `2Gi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "500m")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2Gi")]
    pub memory: Option<String>,
}

impl Amounts {
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }

    /// Each resource by its name, given or not.
    pub(crate) fn pairs(&self) -> [(&'static str, Option<&String>); 2] {
        [("cpu", self.cpu.as_ref()), ("memory", self.memory.as_ref())]
    }
}
