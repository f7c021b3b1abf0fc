//! A submission's progress through Kueue: pure, applied after what its Job and pods say.
//!
//! While Kueue holds its Job suspended a submission is `pending`, and its message says where
//! it waits and why, in Kueue's words where Kueue gave some. Once Kueue lets the Job run it is
//! admitted; one that carries our admission gate is held back by its limit of concurrent Jobs,
//! and says so. A Job suspended again after it ran was evicted (preempted, its queue stopped):
//! the submission steps back to `pending`, neither failed nor cancelled, and waits to be
//! admitted again; its evictions are Kueue's count, so a repeated event counts nothing twice.

use k8s_openapi::api::batch::v1::Job;

use super::workloads::WorkloadFacts;
use crate::domain::{Progress, State, Submission};

/// `next` (what the Job and pods say) with what Kueue says of `submission`'s `job`, and of its
/// Workload if Kueue has made it yet.
pub fn with_kueue(
    submission: &Submission,
    mut next: Progress,
    job: &Job,
    workload: Option<&WorkloadFacts>,
) -> Progress {
    let Some(queueing) = &submission.spec.queueing else {
        return next;
    };
    if next.state.is_final() {
        return next;
    }
    let current = &submission.progress;
    next.evictions = current
        .evictions
        .max(workload.map_or(0, |workload| workload.evictions));
    if !super::progress::is_suspended(job) {
        next.admitted = true;
        return next;
    }
    next.admitted = false;
    if next.state.can_be_evicted() {
        next.state = State::Pending;
    }
    let queue = &queueing.queue;
    let waits = match workload.and_then(|workload| workload.waiting.as_deref()) {
        _ if super::manifest::is_gated(job) => format!(
            "waits in Kueue queue {queue}, held back by its limit of concurrent Jobs \
             (its user's or its batch's) until one of them ends"
        ),
        Some(why) => format!("waits in Kueue queue {queue}: {why}"),
        None => format!("waits in Kueue queue {queue} to be admitted"),
    };
    let evicted = workload.and_then(|workload| workload.evicted.as_ref());
    next.message = Some(match evicted {
        Some(eviction) => format!("{}; {waits}", eviction.explained()),
        None => waits,
    });
    next
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobSpec;

    use super::*;
    use crate::cluster::workloads::Eviction;
    use crate::domain::{Caller, Queueing, SubmissionSpec};

    fn submission(state: State) -> Submission {
        let spec: SubmissionSpec = serde_json::from_value(serde_json::json!({
            "name": null, "image": "busybox", "command": "true", "registry_secret": null,
            "volume": null, "env": {}, "labels": {}, "resources": {"requests": {}, "limits": {}},
            "backoff_limit": 3, "active_deadline_seconds": null,
            "ttl_seconds_after_finished": null,
        }))
        .expect("spec");
        let spec = SubmissionSpec {
            queueing: Some(Queueing {
                queue: "analysis".into(),
                priority_class: None,
            }),
            ..spec
        };
        let mut submission = Submission::new(spec, "ns", &Caller::user("alice"));
        submission.progress.state = state;
        submission
    }

    fn job(suspended: bool) -> Job {
        Job {
            spec: Some(JobSpec {
                suspend: Some(suspended),
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    fn progress(state: State) -> Progress {
        Progress {
            state,
            ..Progress::queued()
        }
    }

    #[test]
    fn a_suspended_job_waits_with_kueues_reason() {
        let submission = submission(State::Pending);
        let workload = WorkloadFacts {
            waiting: Some("insufficient unused quota for cpu in flavor default".into()),
            ..WorkloadFacts::default()
        };

        let next = with_kueue(
            &submission,
            progress(State::Pending),
            &job(true),
            Some(&workload),
        );

        assert_eq!(next.state, State::Pending);
        assert!(!next.admitted);
        assert_eq!(
            next.message.as_deref(),
            Some(
                "waits in Kueue queue analysis: insufficient unused quota for cpu in flavor default"
            )
        );
    }

    #[test]
    fn a_job_at_our_admission_gate_says_its_limit_holds_it_back() {
        let submission = submission(State::Pending);
        let mut gated = job(true);
        crate::cluster::manifest::gate_admission(&mut gated);
        let workload = WorkloadFacts {
            waiting: Some("the workload has admission gates".into()),
            ..WorkloadFacts::default()
        };

        let next = with_kueue(
            &submission,
            progress(State::Pending),
            &gated,
            Some(&workload),
        );

        assert_eq!(next.state, State::Pending);
        assert_eq!(
            next.message.as_deref(),
            Some(
                "waits in Kueue queue analysis, held back by its limit of concurrent Jobs \
                 (its user's or its batch's) until one of them ends"
            )
        );
    }

    #[test]
    fn without_kueues_words_it_says_plainly_where_it_waits() {
        let submission = submission(State::Pending);

        let next = with_kueue(&submission, progress(State::Pending), &job(true), None);

        assert_eq!(
            next.message.as_deref(),
            Some("waits in Kueue queue analysis to be admitted")
        );
    }

    #[test]
    fn a_job_kueue_lets_run_is_admitted() {
        let submission = submission(State::Pending);

        let next = with_kueue(&submission, progress(State::Running), &job(false), None);

        assert!(next.admitted);
        assert_eq!(next.state, State::Running);
    }

    #[test]
    fn a_running_job_suspended_again_was_evicted_and_is_pending_again() {
        let mut running = submission(State::Running);
        running.progress.admitted = true;
        let workload = WorkloadFacts {
            evicted: Some(Eviction {
                reason: "Preempted".into(),
                message: "Preempted to accommodate a workload".into(),
            }),
            evictions: 1,
            ..WorkloadFacts::default()
        };

        let next = with_kueue(
            &running,
            progress(State::Running),
            &job(true),
            Some(&workload),
        );

        assert_eq!(next.state, State::Pending);
        assert!(!next.admitted);
        assert_eq!(next.evictions, 1);
        assert_eq!(
            next.message.as_deref(),
            Some(
                "preempted by a higher priority workload (Kueue: Preempted to accommodate a workload); waits in Kueue queue analysis to be admitted"
            )
        );
    }

    #[test]
    fn evictions_never_count_down_nor_does_an_ended_submission_change() {
        let mut evicted = submission(State::Pending);
        evicted.progress.evictions = 2;

        let next = with_kueue(&evicted, progress(State::Pending), &job(true), None);
        let ended = with_kueue(&evicted, progress(State::Failed), &job(true), None);

        assert_eq!(next.evictions, 2);
        assert_eq!(ended, progress(State::Failed));
    }
}
