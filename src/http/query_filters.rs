//! The filters a listing, an event stream and a bulk cancel or rerun take: `state`, `label`,
//! `cluster` and `queue`.

use std::str::FromStr;

use super::error::{ApiError, ApiResult};
use super::extract::QueryPairs;
use crate::domain::{FieldError, State, kube_rules};

/// The states of the `state` parameters (repeated, or separated with commas).
pub fn states_asked(query: &QueryPairs) -> ApiResult<Vec<State>> {
    query
        .all("state")
        .flat_map(|value| value.split(','))
        .map(|text| {
            State::from_str(text.trim())
                .map_err(|error| ApiError::bad_request("state", error.to_string()))
        })
        .collect()
}

/// The labels of the `label` parameters (`key=value`, repeated to require several).
pub fn labels_asked(query: &QueryPairs) -> ApiResult<Vec<(String, String)>> {
    query
        .all("label")
        .map(|text| {
            let Some((key, value)) = text.split_once('=') else {
                return Err(ApiError::bad_request("label", "must be key=value"));
            };
            kube_rules::label_key(key)
                .map_err(|reason| ApiError::bad_request("label", format!("key {reason}")))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Why each of the labels of a JSON filter (a bulk cancel's, a bulk rerun's) is not a label.
pub fn label_errors<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        for result in [kube_rules::label_key(key), kube_rules::label_value(value)] {
            if let Err(reason) = result {
                errors.push(FieldError::new(format!("labels.{key}"), reason));
            }
        }
    }
    errors
}

/// Why `name` is not a cluster of `clusters`, if it is not.
pub fn unknown_cluster(name: &str, clusters: &crate::cluster::Clusters) -> Option<String> {
    clusters.get(name).is_none().then(|| {
        format!(
            "no cluster is named {name:?} here; this server has: {}",
            clusters.names().join(", ")
        )
    })
}

/// The cluster of the `cluster` parameter, one of `clusters`.
pub fn cluster_asked(
    query: &QueryPairs,
    clusters: &crate::cluster::Clusters,
) -> ApiResult<Option<String>> {
    let Some(name) = query.single("cluster")? else {
        return Ok(None);
    };
    match unknown_cluster(name, clusters) {
        Some(reason) => Err(ApiError::bad_request("cluster", reason)),
        None => Ok(Some(name.to_owned())),
    }
}

/// The Kueue LocalQueue of the `queue` parameter: a name Kubernetes accepts.
pub fn queue_asked(query: &QueryPairs) -> ApiResult<Option<String>> {
    let Some(queue) = query.single("queue")? else {
        return Ok(None);
    };
    kube_rules::dns1123_subdomain(queue)
        .map_err(|reason| ApiError::bad_request("queue", reason))?;
    Ok(Some(queue.to_owned()))
}
