//! What Kubernetes recorded about a submission's Job and pods (its Events), as the Events
//! section of `kubectl describe` shows them: scheduling, image pulls, back-offs, the Job's
//! pod creations and its failure reason, in the words of the component that saw them.
//!
//! A pure function turns an Event into a row; the cluster side only lists them.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event of `kubectl describe`'s Events section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventRow {
    /// What it is about, as `Kind/name`: `Job/sh-…` or `Pod/sh-…-x7k2p`.
    pub object: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short machine-readable cause, e.g. `Scheduled`, `Pulling`, `BackOff`, `BackoffLimitExceeded`.
    pub reason: String,
    pub message: String,
    /// The component that reported it, e.g. `job-controller`, `kubelet`.
    pub from: String,
    /// How many times it was seen (the API server folds repeats into one event).
    pub count: i32,
    /// When it was first and last seen.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<Timestamp>,
}

/// An Event as a row. Older reporters fill `firstTimestamp`/`lastTimestamp`/`count`, newer
/// ones `eventTime` and `series`; the row reads whichever is there.
pub fn event_row(event: &Event) -> EventRow {
    let involved = &event.involved_object;
    let event_time = event.event_time.as_ref().map(|at| at.0);
    let series = event.series.as_ref();
    let first_seen = event
        .first_timestamp
        .as_ref()
        .map(|at| at.0)
        .or(event_time)
        .or(event.metadata.creation_timestamp.as_ref().map(|at| at.0));
    let last_seen = event
        .last_timestamp
        .as_ref()
        .map(|at| at.0)
        .or(series.and_then(|series| series.last_observed_time.as_ref().map(|at| at.0)))
        .or(first_seen);
    let from = event
        .source
        .as_ref()
        .and_then(|source| source.component.clone())
        .filter(|component| !component.is_empty())
        .or_else(|| event.reporting_component.clone())
        .unwrap_or_default();
    EventRow {
        object: format!(
            "{}/{}",
            involved.kind.as_deref().unwrap_or_default(),
            involved.name.as_deref().unwrap_or_default()
        ),
        kind: event.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default().trim().to_owned(),
        from,
        count: event
            .count
            .or(series.and_then(|series| series.count))
            .unwrap_or(1),
        first_seen,
        last_seen,
    }
}

/// The rows of several objects' events, oldest first, as `kubectl describe` orders them.
pub fn event_rows<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = events.into_iter().map(event_row).collect();
    rows.sort_by(|a, b| {
        (a.last_seen, a.first_seen, &a.object).cmp(&(b.last_seen, b.first_seen, &b.object))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: serde_json::Value) -> Event {
        serde_json::from_value(value).expect("event")
    }

    #[test]
    fn an_event_from_the_job_controller_reads_as_kubectl_describe_shows_it() {
        let row = event_row(&event(serde_json::json!({
            "metadata": {"name": "sh-0193a.17f", "namespace": "ns"},
            "involvedObject": {"kind": "Job", "name": "sh-0193a"},
            "type": "Warning", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit\n",
            "source": {"component": "job-controller"}, "count": 1,
            "firstTimestamp": "2026-03-01T11:00:05Z", "lastTimestamp": "2026-03-01T11:00:05Z"
        })));

        assert_eq!(row.object, "Job/sh-0193a");
        assert_eq!(row.kind, "Warning");
        assert_eq!(row.reason, "BackoffLimitExceeded");
        assert_eq!(row.message, "Job has reached the specified backoff limit");
        assert_eq!(row.from, "job-controller");
        assert_eq!(
            row.last_seen,
            Some("2026-03-01T11:00:05Z".parse().expect("time"))
        );
    }

    #[test]
    fn an_event_of_the_newer_api_uses_its_event_time_series_and_reporter() {
        let row = event_row(&event(serde_json::json!({
            "metadata": {"name": "sh-0193a-x7k2p.18a", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "sh-0193a-x7k2p"},
            "reason": "BackOff", "message": "Back-off pulling image \"nope\"",
            "reportingComponent": "kubelet",
            "eventTime": "2026-03-01T11:00:01.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-03-01T11:03:00.000000Z"}
        })));

        assert_eq!(row.kind, "Normal", "an event without a type is Normal");
        assert_eq!(row.from, "kubelet");
        assert_eq!(row.count, 7);
        assert_eq!(
            row.first_seen,
            Some("2026-03-01T11:00:01Z".parse().expect("time"))
        );
        assert_eq!(
            row.last_seen,
            Some("2026-03-01T11:03:00Z".parse().expect("time"))
        );
    }

    #[test]
    fn rows_of_a_job_and_its_pods_are_ordered_by_when_they_were_last_seen() {
        let at = |name: &str, kind: &str, time: &str| {
            event(serde_json::json!({
                "metadata": {"name": format!("{name}.{time}")},
                "involvedObject": {"kind": kind, "name": name},
                "reason": "R", "lastTimestamp": time
            }))
        };
        let events = [
            at("sh-a-pod", "Pod", "2026-03-01T11:00:03Z"),
            at("sh-a", "Job", "2026-03-01T11:00:01Z"),
            at("sh-a-pod", "Pod", "2026-03-01T11:00:02Z"),
        ];

        let objects: Vec<String> = event_rows(&events)
            .into_iter()
            .map(|row| format!("{} {}", row.object, row.last_seen.expect("time")))
            .collect();

        assert_eq!(
            objects,
            [
                "Job/sh-a 2026-03-01T11:00:01Z",
                "Pod/sh-a-pod 2026-03-01T11:00:02Z",
                "Pod/sh-a-pod 2026-03-01T11:00:03Z",
            ]
        );
    }
}
