//! What a submission that waits in the service's own queue (`waiting` or `queued`) waits for,
//! in words: the same "why" users get from Kueue, for the service's own limits.

/// What holds a submission before its Job is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitsFor {
    /// Submissions it depends on that have not succeeded: each by name (or id) and state.
    Dependencies(Vec<(String, String)>),
    /// No cluster is configured: Jobs are created once one is.
    Cluster,
    /// Its user has as many Jobs active as they may have at once.
    UserLimit { user: String, limit: i64 },
    /// Its batch has as many Jobs active as the batch's `max_concurrent`.
    BatchLimit { limit: i64 },
    /// As many of the service's Jobs wait suspended in Kueue as `--kueue-max-suspended` allows.
    KueueRoom { max: u32 },
    /// The cluster it is pinned to takes no Job now, for the reason given.
    PinnedCluster { cluster: String, why: String },
    /// No cluster takes a Job now: each cluster with the reason it does not.
    ClusterRoom(Vec<(String, String)>),
    /// Nothing: its Job is about to be created.
    Turn,
}

impl WaitsFor {
    /// The reason in a sentence, as a submission's `message`.
    pub fn explain(&self) -> String {
        match self {
            WaitsFor::Dependencies(unfinished) => {
                let listed: Vec<String> = unfinished
                    .iter()
                    .map(|(name, state)| format!("{name} ({state})"))
                    .collect();
                let count = match unfinished.len() {
                    1 => "1 submission".to_owned(),
                    n => format!("{n} submissions"),
                };
                format!(
                    "waits for {count} it depends on to succeed: {}",
                    listed.join(", ")
                )
            }
            WaitsFor::Cluster => {
                "waits for a cluster: none is configured, and its Job is created once one is"
                    .to_owned()
            }
            WaitsFor::UserLimit { user, limit } => format!(
                "waits for one of {user}'s {limit} active Jobs to end: at most {limit} run at \
                 once (max_concurrent)"
            ),
            WaitsFor::BatchLimit { limit } => format!(
                "waits for one of its batch's {limit} active Jobs to end: the batch's \
                 max_concurrent is {limit}"
            ),
            WaitsFor::KueueRoom { max } => format!(
                "waits for room in Kueue: {max} of the service's Jobs already wait there to be \
                 admitted (--kueue-max-suspended)"
            ),
            WaitsFor::PinnedCluster { cluster, why } => {
                format!("waits for the cluster {cluster} it asked for: {why}")
            }
            WaitsFor::ClusterRoom(clusters) => {
                let listed: Vec<String> = clusters
                    .iter()
                    .map(|(cluster, why)| format!("{cluster} {why}"))
                    .collect();
                format!("waits for a cluster with room: {}", listed.join(", "))
            }
            WaitsFor::Turn => "its Job is about to be created".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_says_what_it_waits_for() {
        let dependencies = WaitsFor::Dependencies(vec![
            ("sample-a".into(), "running".into()),
            ("01935f2e".into(), "queued".into()),
        ]);
        let user = WaitsFor::UserLimit {
            user: "alice".into(),
            limit: 2,
        };

        assert_eq!(
            dependencies.explain(),
            "waits for 2 submissions it depends on to succeed: sample-a (running), 01935f2e (queued)"
        );
        assert_eq!(
            user.explain(),
            "waits for one of alice's 2 active Jobs to end: at most 2 run at once (max_concurrent)"
        );
    }

    #[test]
    fn a_submission_held_by_its_clusters_says_which_and_why() {
        let pinned = WaitsFor::PinnedCluster {
            cluster: "gpu".into(),
            why: "it is full: 8 active Jobs at most (--cluster-capacity)".into(),
        };
        let none = WaitsFor::ClusterRoom(vec![
            (
                "onsite".into(),
                "is full: 400 active Jobs at most (--cluster-capacity)".into(),
            ),
            ("cloud".into(), "does not answer".into()),
        ]);

        assert_eq!(
            pinned.explain(),
            "waits for the cluster gpu it asked for: it is full: 8 active Jobs at most (--cluster-capacity)"
        );
        assert_eq!(
            none.explain(),
            "waits for a cluster with room: onsite is full: 400 active Jobs at most (--cluster-capacity), cloud does not answer"
        );
    }
}
