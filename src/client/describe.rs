//! `describe ID`: a submission as `kubectl describe` would show it, with its Job, its pods and
//! their containers, and why it failed (the submission's message, and each container that
//! ended in error with its reason and exit code), ending with the events Kubernetes recorded
//! about the Job and its pods.
//!
//! The Job and pods come from the cluster through the API; when it cannot be asked, the
//! submission is still shown, with a line saying why the rest is missing.

use jiff::Timestamp;
use serde_json::Value;

use super::api::{Api, id_segment};
use super::args::DescribeArgs;
use super::error::ClientError;
use super::model::{self, EventRow, Items, JobRow, PodDetail, Submission};
use super::outcome::Outcome;
use super::output::{Table, age, or_none};
use super::terminal;
use crate::domain::{SUBMISSION_ID_LABEL, State};

pub async fn run(api: &Api, args: &DescribeArgs) -> Result<Outcome, ClientError> {
    let item: Value = api
        .get(&format!("v1/submissions/{}", id_segment(&args.id)), &[])
        .await?;
    let submission: Submission = model::read(&item)?;
    let selector = format!("{SUBMISSION_ID_LABEL}={}", submission.id);
    let job = api
        .get::<Items>("v1/jobs", &[("label_selector", selector)])
        .await
        .and_then(|jobs| jobs.items.first().map(model::read::<JobRow>).transpose());
    let pods = api
        .get::<Items>(
            &format!("v1/submissions/{}/pods", id_segment(&submission.id)),
            &[],
        )
        .await
        .and_then(|pods| pods.items.iter().map(model::read::<PodDetail>).collect());
    let events = api
        .get::<Items>(
            &format!(
                "v1/submissions/{}/cluster-events",
                id_segment(&submission.id)
            ),
            &[],
        )
        .await
        .and_then(|events| events.items.iter().map(model::read::<EventRow>).collect());
    let text = render(
        &submission,
        job.map_err(|error| error.to_string()),
        pods.map_err(|error| error.to_string()),
        events.map_err(|error| error.to_string()),
        Timestamp::now(),
    );
    terminal::print(&text)?;
    Ok(Outcome::Success)
}

/// The whole description, as plain text.
pub fn render(
    submission: &Submission,
    job: Result<Option<JobRow>, String>,
    pods: Result<Vec<PodDetail>, String>,
    events: Result<Vec<EventRow>, String>,
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let mut field = |label: &str, value: &str| {
        out.push_str(&format!("{:<17}{value}\n", format!("{label}:")));
    };
    let when = |at: Option<Timestamp>| match at {
        Some(at) => format!("{at} ({} ago)", age(Some(at), now)),
        None => "<none>".into(),
    };
    field("ID", &submission.id);
    field("Name", &or_none(submission.name.as_deref()));
    field("Owner", &submission.owner);
    if submission.submitted_by != submission.owner && !submission.submitted_by.is_empty() {
        field("Submitted by", &submission.submitted_by);
    }
    field("State", &submission.state);
    field("Message", &or_none(submission.message.as_deref()));
    if let Some(queue) = &submission.queue {
        field("Queue", &queue.summary());
    }
    if let Some(cluster) = &submission.cluster {
        field("Cluster", cluster);
    }
    field("Created", &when(submission.created_at));
    field("Started", &when(submission.started_at));
    field("Finished", &when(submission.finished_at));
    field("Image", &submission.image);
    field("Command", &format!("bash -cl {:?}", submission.command));
    field(
        "Registry secret",
        &or_none(submission.registry_secret.as_deref()),
    );
    let volume = match (&submission.volume_claim, &submission.mount_path) {
        (Some(claim), Some(path)) => format!("{claim} mounted at {path}"),
        (Some(claim), None) => claim.clone(),
        _ => "<none>".into(),
    };
    field("Volume claim", &volume);
    field("Labels", &pairs(submission.labels.iter()));
    field("Environment", &pairs(submission.env.iter()));
    let resources = [
        ("requests", &submission.resources.requests),
        ("limits", &submission.resources.limits),
    ]
    .into_iter()
    .filter(|(_, amounts)| !amounts.is_empty())
    .map(|(kind, amounts)| format!("{kind} {}", pairs(amounts.iter())))
    .collect::<Vec<_>>()
    .join("; ");
    field("Resources", &or_none(Some(&resources)));
    if submission.reruns > 0 {
        field(
            "Reruns",
            &format!(
                "{} (this run's Job: {})",
                submission.reruns, submission.job_name
            ),
        );
    }
    field(
        "Retries",
        &submission
            .backoff_limit
            .map_or("<none>".into(), |limit| limit.to_string()),
    );
    field(
        "Time limit",
        &submission
            .active_deadline_seconds
            .map_or("<none>".into(), |seconds| {
                crate::duration::human_duration(jiff::SignedDuration::from_secs(seconds))
            }),
    );
    field(
        "Pods",
        &format!(
            "{} active / {} succeeded / {} failed",
            submission.active, submission.succeeded, submission.failed
        ),
    );
    out.push_str(&format!("Job:             {}", submission.job_name));
    match &job {
        Ok(Some(job)) => out.push_str(&format!(
            " ({}, completions {}, duration {}, age {})\n",
            job.status,
            job.completions,
            or_none(Some(&job.duration)),
            job.age
        )),
        Ok(None) => out.push_str(" (not in the cluster: not created yet, or deleted)\n"),
        Err(why) => out.push_str(&format!(" (the cluster could not be asked: {why})\n")),
    }
    match &pods {
        Ok(pods) if pods.is_empty() => out.push_str("Pod list:        <none>\n"),
        Ok(pods) => {
            out.push_str("Pod list:\n");
            let mut table = Table::new(&["NAME", "READY", "STATUS", "RESTARTS", "NODE", "STARTED"]);
            for pod in pods {
                table.push(vec![
                    pod.name.clone(),
                    pod.ready.clone(),
                    pod.status.clone(),
                    pod.restarts.to_string(),
                    or_none(pod.node.as_deref()),
                    pod.start_time
                        .map_or("<none>".into(), |at| age(Some(at), now) + " ago"),
                ]);
            }
            for line in table.render().lines() {
                out.push_str(&format!("  {line}\n"));
            }
            for pod in pods {
                for container in &pod.containers {
                    out.push_str(&format!(
                        "  {} / {}: {}\n",
                        pod.name,
                        container.name,
                        container_state(container)
                    ));
                }
            }
        }
        Err(why) => out.push_str(&format!(
            "Pod list:        (the cluster could not be asked: {why})\n"
        )),
    }
    out.push_str(&attempts(submission, now));
    if submission.known_state() == Some(State::Failed) {
        out.push_str("Why it failed:\n");
        out.push_str(&format!("  {}\n", or_none(submission.message.as_deref())));
        for pod in pods.iter().flatten() {
            for container in &pod.containers {
                if container.exit_code.is_some_and(|code| code != 0)
                    || (container.state == "waiting" && container.reason.is_some())
                {
                    out.push_str(&format!(
                        "  pod {}: {}\n",
                        pod.name,
                        container_state(container)
                    ));
                }
            }
        }
    }
    match &events {
        Ok(events) if events.is_empty() => out.push_str("Events:          <none>\n"),
        Ok(events) => {
            out.push_str("Events:\n");
            let mut table = Table::new(&["TYPE", "REASON", "AGE", "OBJECT", "FROM", "MESSAGE"]);
            for event in events {
                let mut seen = age(event.last_seen, now);
                if event.count > 1 {
                    seen = format!("{seen} (x{})", event.count);
                }
                table.push(vec![
                    event.kind.clone(),
                    event.reason.clone(),
                    seen,
                    event.object.clone(),
                    event.from.clone(),
                    event.message.clone(),
                ]);
            }
            for line in table.render().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        Err(why) => out.push_str(&format!(
            "Events:          (the cluster could not be asked: {why})\n"
        )),
    }
    out
}

/// Each pod that ended, oldest first, and whether it used a retry.
fn attempts(submission: &Submission, now: Timestamp) -> String {
    if submission.attempts.is_empty() {
        return "Attempts:        <none>\n".into();
    }
    let mut table = Table::new(&[
        "POD",
        "EXIT CODE",
        "REASON",
        "MEMORY",
        "RETRY USED",
        "ENDED",
    ]);
    for attempt in &submission.attempts {
        let used = match (attempt.counted, attempt.disrupted) {
            (true, _) => "yes",
            (false, true) => "no (disrupted)",
            (false, false) => "no",
        };
        table.push(vec![
            attempt.pod.clone(),
            attempt
                .exit_code
                .map_or("<none>".into(), |code| code.to_string()),
            or_none(attempt.reason.as_deref()),
            or_none(attempt.memory.as_deref()),
            used.into(),
            attempt
                .finished_at
                .map_or("<none>".into(), |at| age(Some(at), now) + " ago"),
        ]);
    }
    let mut text = "Attempts:\n".to_owned();
    for line in table.render().lines() {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

fn pairs<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let text: Vec<String> = pairs.map(|(key, value)| format!("{key}={value}")).collect();
    if text.is_empty() {
        "<none>".into()
    } else {
        text.join(", ")
    }
}

fn container_state(container: &model::ContainerDetail) -> String {
    let mut text = container.state.clone();
    if let Some(reason) = &container.reason {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(code) = container.exit_code {
        text.push_str(&format!(", exit code {code}"));
    }
    if let Some(message) = container.message.as_deref().filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    if container.restart_count > 0 {
        text.push_str(&format!(", {} restarts", container.restart_count));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Submission {
        serde_json::from_value(serde_json::json!({
            "id": "0193-a", "name": "ttbar", "owner": "alice", "submitted_by": "alice",
            "state": "failed", "message": "BackoffLimitExceeded: Job has reached the specified backoff limit",
            "job_name": "sh-0193a", "image": "busybox", "command": "exit 3",
            "registry_secret": "sh-k8s-registry-secret", "volume_claim": "ntuples-claim",
            "mount_path": "/ntuples", "labels": {"campaign": "mc16e"}, "env": {},
            "resources": {"requests": {"cpu": "1", "memory": "4000M"}}, "backoff_limit": 1,
            "active": 0, "succeeded": 0, "failed": 2,
            "created_at": "2026-03-01T11:00:00Z"
        }))
        .expect("submission")
    }

    fn failed_pod() -> PodDetail {
        serde_json::from_value(serde_json::json!({
            "name": "sh-0193a-x7k2p", "phase": "Failed", "status": "Error", "ready": "0/1",
            "restarts": 0, "node": "node-sim", "start_time": "2026-03-01T11:00:01Z",
            "containers": [{"name": "payload", "state": "terminated", "ready": false,
                            "restart_count": 0, "reason": "Error", "exit_code": 3}]
        }))
        .expect("pod")
    }

    #[test]
    fn each_attempt_says_how_it_ended_and_whether_it_used_a_retry() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let mut submission = failed();
        submission.attempts = serde_json::from_value(serde_json::json!([
            {"pod": "sh-0193a-aaaaa", "exit_code": 137, "reason": "OOMKilled", "memory": "4000M",
             "counted": true, "disrupted": false, "finished_at": "2026-03-01T11:10:00Z"},
            {"pod": "sh-0193a-bbbbb", "reason": "Evicted", "memory": "4000M",
             "counted": false, "disrupted": true, "finished_at": "2026-03-01T11:50:00Z"},
        ]))
        .expect("attempts");

        let text = render(&submission, Ok(None), Ok(Vec::new()), Ok(Vec::new()), now);

        let table: Vec<String> = text
            .lines()
            .skip_while(|line| *line != "Attempts:")
            .skip(1)
            .take(3)
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            table,
            [
                "POD EXIT CODE REASON MEMORY RETRY USED ENDED",
                "sh-0193a-aaaaa 137 OOMKilled 4000M yes 50m ago",
                "sh-0193a-bbbbb <none> Evicted 4000M no (disrupted) 10m ago",
            ],
            "{text}"
        );
    }

    #[test]
    fn a_failed_submission_says_why_with_its_pods_exit_codes() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");

        let events = vec![EventRow {
            object: "Job/sh-0193a".into(),
            kind: "Warning".into(),
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
            from: "job-controller".into(),
            count: 1,
            last_seen: Some("2026-03-01T11:59:00Z".parse().expect("time")),
        }];
        let text = render(&failed(), Ok(None), Ok(vec![failed_pod()]), Ok(events), now);

        assert!(text.contains("State:           failed\n"), "{text}");
        assert!(
            text.contains("Volume claim:    ntuples-claim mounted at /ntuples\n"),
            "{text}"
        );
        assert!(
            text.contains("Resources:       requests cpu=1, memory=4000M\n"),
            "{text}"
        );
        assert!(
            text.contains("Created:         2026-03-01T11:00:00Z (60m ago)\n"),
            "{text}"
        );
        assert!(
            text.contains("Why it failed:\n  BackoffLimitExceeded: Job has reached the specified backoff limit\n  pod sh-0193a-x7k2p: terminated (Error), exit code 3\n"),
            "{text}"
        );
        let events = text.split_once("Events:\n").expect("an Events section").1;
        let columns: Vec<&str> = events
            .lines()
            .nth(1)
            .expect("a row")
            .split_whitespace()
            .collect();
        assert_eq!(
            columns[..5],
            [
                "Warning",
                "BackoffLimitExceeded",
                "60s",
                "Job/sh-0193a",
                "job-controller"
            ],
            "{text}"
        );
        assert!(
            events.contains("Job has reached the specified backoff limit"),
            "{text}"
        );
    }

    #[test]
    fn a_submission_waiting_in_kueue_says_its_queue_place_and_kueues_reason() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let waiting = Submission {
            state: "pending".into(),
            message: Some(
                "waits in Kueue queue analysis: insufficient unused quota for cpu".into(),
            ),
            queue: Some(model::Queue {
                name: Some("analysis".into()),
                priority_class: Some("high".into()),
                admitted: false,
                position: Some(3),
                evictions: 1,
            }),
            ..failed()
        };

        let text = render(&waiting, Ok(None), Ok(Vec::new()), Ok(Vec::new()), now);

        assert!(
            text.contains("Message:         waits in Kueue queue analysis: insufficient unused quota for cpu\n"),
            "{text}"
        );
        assert!(
            text.contains("Queue:           analysis (priority high), position 3, evicted once\n"),
            "{text}"
        );
    }

    #[test]
    fn a_placed_submission_names_its_cluster_and_one_not_placed_yet_says_nothing_of_it() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");
        let placed = Submission {
            cluster: Some("onsite".into()),
            ..failed()
        };

        let text = render(&placed, Ok(None), Ok(Vec::new()), Ok(Vec::new()), now);
        let waiting = render(&failed(), Ok(None), Ok(Vec::new()), Ok(Vec::new()), now);

        assert!(text.contains("Cluster:         onsite\n"), "{text}");
        assert!(!waiting.contains("Cluster:"), "{waiting}");
    }

    #[test]
    fn without_the_cluster_the_submission_is_still_described() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().expect("time");

        let text = render(
            &failed(),
            Err("the cluster is unavailable".into()),
            Err("the cluster is unavailable".into()),
            Err("the cluster is unavailable".into()),
            now,
        );

        assert!(text.contains("ID:              0193-a\n"), "{text}");
        assert!(
            text.contains("Job:             sh-0193a (the cluster could not be asked: the cluster is unavailable)\n"),
            "{text}"
        );
    }
}
