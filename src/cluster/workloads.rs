//! What a Kueue Workload says of the Job it stands for: admitted or not, why not in Kueue's
//! own words, and how often it was evicted. Pure, read from the Workload as JSON (Kueue's
//! types are not in k8s-openapi).

use serde_json::Value;

/// What the service keeps of a Workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadFacts {
    /// The name of the Workload, for the log and the visibility API.
    pub name: String,
    /// The uid of the Job it stands for (its `kueue.x-k8s.io/job-uid` label).
    pub job_uid: Option<String>,
    /// Kueue admitted it (`Admitted` is true): its Job may run.
    pub admitted: bool,
    /// Why it waits, in Kueue's words: the message of its `QuotaReserved` condition while that
    /// is false ("couldn't assign flavors to pod set main: insufficient unused quota for cpu in
    /// flavor default-flavor, 1 more needed"), if Kueue gave one.
    pub waiting: Option<String>,
    /// Why it was last evicted (`Evicted` is true): Kueue's reason and message.
    pub evicted: Option<Eviction>,
    /// Evictions in all, from its `schedulingStats`.
    pub evictions: i64,
}

/// Kueue's account of an eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// `Preempted`, `PodsReadyTimeout`, `InactiveWorkload`, `ClusterQueueStopped`...
    pub reason: String,
    pub message: String,
}

impl Eviction {
    /// The eviction in plain words, with Kueue's own after them.
    pub fn explained(&self) -> String {
        let plain = match self.reason.as_str() {
            "Preempted" => "preempted by a higher priority workload",
            "PodsReadyTimeout" => "its pods were not ready in time",
            "InactiveWorkload" => "deactivated in Kueue",
            "ClusterQueueStopped" | "LocalQueueStopped" => "its queue was stopped",
            "DeactivatedDueToAdmissionCheck" | "AdmissionCheck" => "an admission check failed",
            _ => "evicted by Kueue",
        };
        if self.message.is_empty() {
            plain.to_owned()
        } else {
            format!("{plain} (Kueue: {})", self.message)
        }
    }
}

/// The label Kueue puts on a Workload with the uid of its Job.
pub const JOB_UID_LABEL: &str = "kueue.x-k8s.io/job-uid";

/// The name of the Job a Workload stands for (its controlling owner of kind Job), and what it
/// says; `None` for a Workload of anything else.
pub fn read(workload: &Value) -> Option<(String, WorkloadFacts)> {
    let metadata = workload.get("metadata")?;
    let job = metadata
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|owner| {
            owner.get("kind").and_then(Value::as_str) == Some("Job")
                && owner.get("apiVersion").and_then(Value::as_str) == Some("batch/v1")
        })?
        .get("name")?
        .as_str()?
        .to_owned();
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let status = workload.get("status");
    let conditions: Vec<&Value> = status
        .and_then(|status| status.get("conditions"))
        .and_then(Value::as_array)
        .map(|conditions| conditions.iter().collect())
        .unwrap_or_default();
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|condition| condition.get("type").and_then(Value::as_str) == Some(kind))
            .copied()
    };
    let is_true =
        |condition: &Value| condition.get("status").and_then(Value::as_str) == Some("True");
    let admitted = condition("Admitted").is_some_and(is_true);
    let waiting = condition("QuotaReserved")
        .filter(|reserved| !is_true(reserved))
        .and_then(|reserved| text(reserved.get("message")))
        .filter(|message| !message.is_empty());
    let evicted = condition("Evicted")
        .filter(|evicted| is_true(evicted))
        .map(|evicted| Eviction {
            reason: text(evicted.get("reason")).unwrap_or_default(),
            message: text(evicted.get("message")).unwrap_or_default(),
        });
    let evictions = status
        .and_then(|status| status.pointer("/schedulingStats/evictions"))
        .and_then(Value::as_array)
        .map(|counts| {
            counts
                .iter()
                .filter_map(|count| count.get("count").and_then(Value::as_i64))
                .sum()
        })
        .unwrap_or(0);
    Some((
        job,
        WorkloadFacts {
            name: text(metadata.get("name")).unwrap_or_default(),
            job_uid: text(
                metadata.pointer(&format!("/labels/{}", JOB_UID_LABEL.replace('/', "~1"))),
            ),
            admitted,
            waiting,
            evicted,
            evictions,
        },
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A Workload as Kueue 0.19 wrote it for a Job, with `status` as given.
    fn workload(status: Value) -> Value {
        json!({
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "Workload",
            "metadata": {
                "name": "job-sh-1-2f5d3",
                "labels": {"kueue.x-k8s.io/job-uid": "74d3c6aa"},
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": "sh-1",
                    "uid": "74d3c6aa", "controller": true
                }]
            },
            "spec": {"queueName": "analysis"},
            "status": status
        })
    }

    #[test]
    fn an_admitted_workload_reads_as_admitted_for_its_job() {
        let admitted = workload(json!({"conditions": [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved",
             "message": "Quota reserved in ClusterQueue cq"},
            {"type": "Admitted", "status": "True", "reason": "Admitted",
             "message": "The workload is admitted"}
        ]}));

        let (job, facts) = read(&admitted).expect("a Job's Workload");

        assert_eq!(job, "sh-1");
        assert_eq!(facts.name, "job-sh-1-2f5d3");
        assert_eq!(facts.job_uid.as_deref(), Some("74d3c6aa"));
        assert!(facts.admitted);
        assert_eq!(facts.waiting, None);
        assert_eq!(facts.evictions, 0);
    }

    #[test]
    fn a_workload_without_quota_says_why_in_kueues_words() {
        let waiting = workload(json!({"conditions": [
            {"type": "QuotaReserved", "status": "False", "reason": "Pending",
             "message": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, 1 more needed"}
        ]}));

        let (_, facts) = read(&waiting).expect("a Job's Workload");

        assert!(!facts.admitted);
        assert_eq!(
            facts.waiting.as_deref(),
            Some(
                "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, 1 more needed"
            )
        );
    }

    #[test]
    fn a_preempted_workload_counts_its_evictions_and_says_it_was_preempted() {
        let preempted = workload(json!({
            "conditions": [
                {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": ""},
                {"type": "Evicted", "status": "True", "reason": "Preempted",
                 "message": "Preempted to accommodate a workload (UID: 1, JobUID: 2) due to prioritization in the ClusterQueue"},
                {"type": "Admitted", "status": "False", "reason": "NoReservation"}
            ],
            "schedulingStats": {"evictions": [
                {"reason": "Preempted", "underlyingCause": "", "count": 2},
                {"reason": "PodsReadyTimeout", "underlyingCause": "", "count": 1}
            ]}
        }));

        let (_, facts) = read(&preempted).expect("a Job's Workload");

        assert!(!facts.admitted);
        assert_eq!(facts.waiting, None, "an empty message says nothing");
        assert_eq!(facts.evictions, 3);
        let evicted = facts.evicted.expect("evicted");
        assert!(
            evicted.explained().starts_with(
                "preempted by a higher priority workload (Kueue: Preempted to accommodate"
            ),
            "{}",
            evicted.explained()
        );
    }

    #[test]
    fn a_workload_of_anything_but_a_job_is_not_ours() {
        let mut other = workload(json!({}));
        other["metadata"]["ownerReferences"][0]["kind"] = json!("RayCluster");

        assert_eq!(read(&other), None);
    }
}
