//! A submission's id, and the name of its Job that derives from it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A submission's id: a UUIDv7, so ids sort by creation time and "newest first" is an index scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubmissionId(Uuid);

impl SubmissionId {
    pub fn new() -> Self {
        SubmissionId(Uuid::now_v7())
    }

    /// The name of the submission's Job: stable, so a second create of the same submission is
    /// refused by the API server (409) instead of running the payload twice.
    pub fn job_name(&self) -> String {
        format!("sh-{}", self.0.simple())
    }
}

impl Default for SubmissionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl std::str::FromStr for SubmissionId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text).map(SubmissionId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kube_rules;

    #[test]
    fn job_names_derive_from_the_id_alone_and_are_valid_dns_labels() {
        let id: SubmissionId = "01935f2e-8c4a-7b3d-9e2f-123456789abc".parse().expect("id");
        let reread: SubmissionId = id.to_string().parse().expect("id");

        assert_eq!(id.job_name(), "sh-01935f2e8c4a7b3d9e2f123456789abc");
        assert_eq!(
            reread.job_name(),
            id.job_name(),
            "a restart names the same Job"
        );
        assert_ne!(SubmissionId::new().job_name(), id.job_name());
        assert!(kube_rules::dns1123_label(&id.job_name()).is_ok());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let first = SubmissionId::new();
        let second = SubmissionId::new();

        assert!(first.to_string() < second.to_string());
    }
}
