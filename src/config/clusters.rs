//! Several clusters behind one API (`--cluster`, `--placement`, `--cluster-capacity`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::values::named;
use crate::cluster::clusters::ClusterSource;
use crate::domain::placement::Placement;
use crate::domain::{DEFAULT_CLUSTER, kube_rules};

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// A cluster to create Jobs in, `NAME=KUBECONFIG` or `NAME=KUBECONFIG#CONTEXT` (repeat
    /// for several; comma-separated in the environment). Without one: the cluster of the
    /// environment (kubeconfig, or the pod's service account), named `default`.
    #[arg(
        long = "cluster",
        env = "SUBMISSION_HELPER_CLUSTERS",
        value_delimiter = ',',
        value_parser = named(cluster_source)
    )]
    pub clusters: Vec<ClusterSource>,
    /// Where a submission that names no cluster goes: `ordered` (the first cluster, in the
    /// order given, with room) or `balanced` (the one with the lowest share of its capacity in
    /// use).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_PLACEMENT",
        value_parser = named(|text: &str| text.parse::<Placement>()),
        default_value_t = Placement::default()
    )]
    pub placement: Placement,
    /// At most N active Jobs in the cluster NAME, `NAME=N` (repeat for several). Default: no
    /// cap.
    #[arg(
        long = "cluster-capacity",
        env = "SUBMISSION_HELPER_CLUSTER_CAPACITIES",
        value_delimiter = ',',
        value_parser = named(capacity)
    )]
    pub capacities: Vec<(String, i64)>,
}

impl ClusterArgs {
    /// The clusters' names, in the order given: `default` alone without `--cluster`.
    pub fn names(&self) -> Vec<String> {
        if self.clusters.is_empty() {
            return vec![DEFAULT_CLUSTER.to_owned()];
        }
        self.clusters
            .iter()
            .map(|source| source.name.clone())
            .collect()
    }

    /// The caps by cluster; a cap of a cluster the service does not have, or two caps of one,
    /// stop the server at start, as do two clusters of one name.
    pub fn capacities(&self, names: &[String]) -> Result<BTreeMap<String, i64>, String> {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self
            .clusters
            .iter()
            .find(|source| !seen.insert(&source.name))
        {
            return Err(format!("--cluster names {:?} twice", twice.name));
        }
        let mut capacities = BTreeMap::new();
        for (name, capacity) in &self.capacities {
            if !names.contains(name) {
                return Err(format!(
                    "--cluster-capacity names {name:?}, which is not a cluster of this server ({})",
                    names.join(", ")
                ));
            }
            if capacities.insert(name.clone(), *capacity).is_some() {
                return Err(format!("--cluster-capacity caps {name:?} twice"));
            }
        }
        Ok(capacities)
    }
}

/// A cluster's name: what users name it by (a DNS label, as in `cluster=onsite`).
fn cluster_name(name: &str) -> Result<String, String> {
    kube_rules::dns1123_label(name)
        .map(|()| name.to_owned())
        .map_err(|reason| format!("names a cluster {name:?}, which {reason}"))
}

/// `NAME=KUBECONFIG[#CONTEXT]`.
fn cluster_source(text: &str) -> Result<ClusterSource, String> {
    let Some((name, rest)) = text.split_once('=') else {
        return Err(format!(
            "must be NAME=KUBECONFIG or NAME=KUBECONFIG#CONTEXT, not {text:?}"
        ));
    };
    let (path, context) = match rest.split_once('#') {
        Some((path, context)) if !context.is_empty() => (path, Some(context.to_owned())),
        Some(_) => return Err(format!("names an empty context in {text:?}")),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(format!("names no kubeconfig in {text:?}"));
    }
    Ok(ClusterSource {
        name: cluster_name(name)?,
        kubeconfig: PathBuf::from(path),
        context,
    })
}

/// `NAME=N`, N at least 1.
fn capacity(text: &str) -> Result<(String, i64), String> {
    let (name, count) = text
        .split_once('=')
        .ok_or_else(|| format!("must be NAME=N, not {text:?}"))?;
    let count: i64 = count
        .parse()
        .ok()
        .filter(|count| *count >= 1)
        .ok_or_else(|| format!("must give a count of at least 1, not {count:?}"))?;
    Ok((cluster_name(name)?, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::testing::parse;

    #[test]
    fn clusters_are_read_with_their_contexts_and_caps() {
        let args = parse::<ClusterArgs>(&[
            "--cluster",
            "onsite=/etc/sh/onsite.yaml",
            "--cluster",
            "cloud=/etc/sh/cloud.yaml#overflow",
            "--placement",
            "balanced",
            "--cluster-capacity",
            "cloud=200",
        ])
        .expect("valid");

        assert_eq!(
            args.clusters,
            [
                ClusterSource {
                    name: "onsite".into(),
                    kubeconfig: "/etc/sh/onsite.yaml".into(),
                    context: None,
                },
                ClusterSource {
                    name: "cloud".into(),
                    kubeconfig: "/etc/sh/cloud.yaml".into(),
                    context: Some("overflow".into()),
                },
            ]
        );
        assert_eq!(args.placement, Placement::Balanced);
        let names = ["onsite".to_owned(), "cloud".to_owned()];
        assert_eq!(
            args.capacities(&names),
            Ok(BTreeMap::from([("cloud".to_owned(), 200)]))
        );
    }

    #[test]
    fn bad_clusters_and_caps_are_refused_naming_the_flag() {
        for (flags, expected) in [
            (
                &["--cluster", "onsite"][..],
                "--cluster must be NAME=KUBECONFIG",
            ),
            (
                &["--cluster", "On_Site=/k"],
                "--cluster names a cluster \"On_Site\"",
            ),
            (&["--cluster", "a=/k#"], "--cluster names an empty context"),
            (
                &["--cluster-capacity", "a=0"],
                "--cluster-capacity must give a count",
            ),
            (&["--placement", "random"], "--placement unknown placement"),
        ] {
            let error = parse::<ClusterArgs>(flags).expect_err("invalid");
            assert!(error.starts_with(expected), "{flags:?}: {error}");
        }
    }

    #[test]
    fn a_cap_of_an_unknown_cluster_and_a_name_given_twice_stop_the_start() {
        let args = parse::<ClusterArgs>(&["--cluster-capacity", "gpu=4"]).expect("parses");
        let error = args.capacities(&["default".into()]).expect_err("unknown");
        assert!(error.contains("\"gpu\", which is not a cluster"), "{error}");

        let args =
            parse::<ClusterArgs>(&["--cluster", "a=/x", "--cluster", "a=/y"]).expect("parses");
        let error = args.capacities(&["a".into()]).expect_err("twice");
        assert!(error.contains("names \"a\" twice"), "{error}");
    }
}
