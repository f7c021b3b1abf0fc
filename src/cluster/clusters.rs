//! The clusters behind the API (`--cluster`): each with its own client, watches, caches and
//! metrics, in the order the service was given them, and how placement chooses among them.

use std::path::PathBuf;
use std::sync::Arc;

use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::client::Cluster;
use crate::domain::Submission;
use crate::domain::placement::{Place, Placement};
use crate::storage::Placing;

/// A cluster the service creates Jobs in (`--cluster NAME=KUBECONFIG#CONTEXT`): its name in
/// the API, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSource {
    pub name: String,
    pub kubeconfig: PathBuf,
    /// The kubeconfig's context; its current one if `None`.
    pub context: Option<String>,
}

/// The service's clusters: at least one. Cheap to clone.
#[derive(Clone)]
pub struct Clusters {
    all: Arc<[Cluster]>,
    placement: Placement,
    /// Handles on namespaces the service no longer creates Jobs in (it was restarted with
    /// another `--namespace`) but whose live Jobs it still follows: never placed in.
    former: Arc<[Cluster]>,
}

impl From<Cluster> for Clusters {
    fn from(cluster: Cluster) -> Self {
        Clusters::new(cluster, Vec::new(), Placement::default())
    }
}

impl Clusters {
    /// `first`, then `others`, in that order; all share `first`'s namespace.
    pub fn new(first: Cluster, others: Vec<Cluster>, placement: Placement) -> Self {
        let all: Vec<Cluster> = std::iter::once(first).chain(others).collect();
        Clusters {
            all: all.into(),
            placement,
            former: Arc::new([]),
        }
    }

    /// A client for each of `sources`, in their order, each counting in its own metrics. The
    /// namespace is `namespace`, else the first kubeconfig context's. A kubeconfig that cannot
    /// be read, or a context it lacks, stops the start, naming the cluster.
    pub async fn connect(
        sources: &[ClusterSource],
        namespace: Option<String>,
    ) -> Result<Self, String> {
        let mut namespace = namespace;
        let mut all = Vec::new();
        for source in sources {
            let refuse = |error: &dyn std::fmt::Display| {
                format!(
                    "--cluster {}: cannot use {}: {error}",
                    source.name,
                    source.kubeconfig.display()
                )
            };
            let kubeconfig = Kubeconfig::read_from(&source.kubeconfig).map_err(|e| refuse(&e))?;
            let options = KubeConfigOptions {
                context: source.context.clone(),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| refuse(&e))?;
            let namespace = namespace
                .get_or_insert_with(|| config.default_namespace.clone())
                .clone();
            all.push(Cluster::from_config(config, namespace).named(&source.name));
        }
        let mut all = all.into_iter();
        let first = all
            .next()
            .ok_or_else(|| "no --cluster was given".to_owned())?;
        Ok(Clusters::new(first, all.collect(), Placement::default()))
    }

    /// The same clusters, each changed by `change` (settings applied at start).
    pub fn map(self, change: impl FnMut(Cluster) -> Cluster) -> Self {
        Clusters {
            all: self.all.iter().cloned().map(change).collect(),
            placement: self.placement,
            former: self.former,
        }
    }

    /// The same, also following the live Jobs of each `(cluster, namespace)` in `former`
    /// (where the service created Jobs before a restart with another `--namespace`); a
    /// cluster it no longer has, or the namespace it uses now, is left out.
    pub fn following_also(mut self, former: &[(String, String)]) -> Self {
        let namespace = self.namespace().to_owned();
        let handles: Vec<Cluster> = former
            .iter()
            .filter(|(_, old)| *old != namespace)
            .filter_map(|(name, old)| Some(self.get(name)?.in_namespace(old)))
            .collect();
        self.former = handles.into();
        self
    }

    /// The handles on former namespaces (see [`Clusters::following_also`]).
    pub fn former(&self) -> impl Iterator<Item = &Cluster> {
        self.former.iter()
    }

    /// The handle on `cluster`'s `namespace`: the one Jobs are created in, or a former one
    /// still followed.
    pub fn following(&self, cluster: &str, namespace: &str) -> Option<&Cluster> {
        self.all
            .iter()
            .chain(self.former.iter())
            .find(|handle| handle.name() == cluster && handle.namespace() == namespace)
    }

    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The first cluster: the one a service with one cluster has.
    pub fn first(&self) -> &Cluster {
        // Never empty: `new` takes a first.
        &self.all[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.all.iter()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Always false: there is at least one cluster.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.all.iter().find(|cluster| cluster.name() == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.all
            .iter()
            .map(|cluster| cluster.name().to_owned())
            .collect()
    }

    /// The namespace every cluster's Jobs are created in.
    pub fn namespace(&self) -> &str {
        self.first().namespace()
    }

    /// Whether any cluster has a client.
    pub fn is_configured(&self) -> bool {
        self.all.iter().any(Cluster::is_configured)
    }

    /// The handle on the cluster and namespace `submission`'s Job is (or was) created in, if
    /// the service still follows them; `None` also before its Job is placed.
    pub fn of(&self, submission: &Submission) -> Option<&Cluster> {
        self.following(submission.cluster.as_deref()?, &submission.namespace)
    }

    /// [`Clusters::of`]; for a submission not placed yet, the only cluster when there is one
    /// (whose answer, even "not configured", is the one to give).
    pub fn of_or_only(&self, submission: &Submission) -> Option<&Cluster> {
        match (&submission.cluster, self.len()) {
            (None, 1) => Some(self.first()),
            _ => self.of(submission),
        }
    }

    /// What a claim may place submissions in now: each cluster with its cap, open while it
    /// takes Jobs.
    pub fn placing(&self) -> Placing {
        Placing {
            placement: self.placement,
            places: self
                .all
                .iter()
                .map(|cluster| Place {
                    name: cluster.name().to_owned(),
                    capacity: cluster.capacity(),
                    in_use: 0,
                    open: cluster.takes_jobs(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, namespace: &str) -> Cluster {
        Cluster::unconfigured("no client in this test".into(), namespace.into()).named(name)
    }

    #[test]
    fn former_namespaces_are_followed_in_clusters_the_service_still_has_and_never_placed_in() {
        let clusters = Clusters::new(
            cluster("onsite", "analysis-2027"),
            vec![cluster("cloud", "analysis-2027")],
            Placement::Ordered,
        )
        .following_also(&[
            ("onsite".into(), "analysis".into()),
            ("gone".into(), "analysis".into()),
            ("cloud".into(), "analysis-2027".into()),
        ]);

        let former: Vec<(&str, &str)> = clusters
            .former()
            .map(|handle| (handle.name(), handle.namespace()))
            .collect();
        assert_eq!(former, [("onsite", "analysis")]);
        let followed = clusters
            .following("onsite", "analysis")
            .map(Cluster::namespace);
        assert_eq!(followed, Some("analysis"));
        assert!(clusters.following("cloud", "analysis").is_none());
        assert_eq!(clusters.names(), ["onsite", "cloud"]);
        assert_eq!(clusters.placing().places.len(), 2);
    }
}
