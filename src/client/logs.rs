//! `logs [-f] ID [--pod P] [--previous]`: a submission's log, written out as it arrives.
//!
//! The API has no "previous container" parameter: a pod runs one attempt, so `--previous` is
//! the pod of the attempt before the newest, found in the submission's pod list.

use futures::StreamExt;
use std::io::Write;

use super::api::{Api, id_segment};
use super::args::LogsArgs;
use super::error::ClientError;
use super::model::{self, Items, PodDetail};
use super::outcome::Outcome;

/// The pod of the attempt before the newest: pods ordered by when they started, those that have
/// not started yet counting as the newest.
pub fn previous_pod(pods: &[PodDetail]) -> Option<&PodDetail> {
    let mut ordered: Vec<&PodDetail> = pods.iter().collect();
    ordered.sort_by(|a, b| {
        let key = |pod: &PodDetail| (pod.start_time.is_none(), pod.start_time, pod.name.clone());
        key(a).cmp(&key(b))
    });
    ordered
        .len()
        .checked_sub(2)
        .and_then(|index| ordered.get(index).copied())
}

pub async fn run(api: &Api, args: &LogsArgs) -> Result<Outcome, ClientError> {
    let id = id_segment(&args.id);
    let pod = if args.previous {
        let pods: Items = api.get(&format!("v1/submissions/{id}/pods"), &[]).await?;
        let pods: Vec<PodDetail> = pods
            .items
            .iter()
            .map(model::read)
            .collect::<Result<_, _>>()?;
        let previous = previous_pod(&pods).ok_or_else(|| {
            ClientError::Usage(format!(
                "submission {} has {} pod(s) in the cluster, so no attempt before the newest",
                args.id,
                pods.len()
            ))
        })?;
        Some(previous.name.clone())
    } else {
        args.pod.clone()
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    if args.follow {
        query.push(("follow", "true".into()));
    }
    if let Some(pod) = pod {
        query.push(("pod", pod));
    }
    if let Some(tail) = args.tail {
        query.push(("tail_lines", tail.to_string()));
    }
    if args.timestamps {
        query.push(("timestamps", "true".into()));
    }
    let response = api
        .stream(&format!("v1/submissions/{id}/logs"), &query)
        .await?;
    let mut body = response.bytes_stream();
    let mut stdout = std::io::stdout();
    let output = |source| ClientError::Io {
        what: "writing to standard output".into(),
        source,
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| api.broken_off(&error))?;
        stdout
            .write_all(&chunk)
            .and_then(|()| stdout.flush())
            .map_err(output)?;
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, started: Option<&str>) -> PodDetail {
        PodDetail {
            name: name.into(),
            start_time: started.map(|at| at.parse().expect("time")),
            ..PodDetail::default()
        }
    }

    #[test]
    fn the_previous_pod_is_the_one_that_started_before_the_newest() {
        let pods = [
            pod("sh-1-bbbbb", Some("2026-03-01T12:00:10Z")),
            pod("sh-1-aaaaa", Some("2026-03-01T12:00:00Z")),
            pod("sh-1-ccccc", Some("2026-03-01T12:00:20Z")),
        ];
        let waiting = [
            pod("sh-1-new", None),
            pod("sh-1-old", Some("2026-03-01T12:00:00Z")),
        ];

        assert_eq!(
            previous_pod(&pods).map(|pod| pod.name.as_str()),
            Some("sh-1-bbbbb")
        );
        assert_eq!(
            previous_pod(&waiting).map(|pod| pod.name.as_str()),
            Some("sh-1-old")
        );
        assert_eq!(previous_pod(&pods[..1]), None);
    }
}
