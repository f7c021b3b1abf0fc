//! Submitting through Kueue: the LocalQueue and WorkloadPriorityClass a submission names, and
//! what the server does when it names none.
//!
//! On a cluster whose owners govern it with Kueue, a Job is created suspended with the
//! `kueue.x-k8s.io/queue-name` label and runs once Kueue admits it within its queue's quota.
//! Whether a queue or class exists is the cluster's to say; here only the names are checked.

use serde::{Deserialize, Serialize};

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;

/// The label that puts a Job in a LocalQueue.
pub const QUEUE_NAME_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// The label that gives a Job a WorkloadPriorityClass.
pub const PRIORITY_CLASS_LABEL: &str = "kueue.x-k8s.io/priority-class";
/// The annotation with which Kueue (0.19 and later) admits no Job until it is removed; it names
/// the controllers that hold the Job back.
pub const ADMISSION_GATE_ANNOTATION: &str = "kueue.x-k8s.io/admission-gated-by";
/// Our name in that annotation: the Job counts against a limit of concurrent Jobs that has no
/// room for it yet (`--max-concurrent`, a token's or a batch's).
pub const ADMISSION_GATE: &str = "submission-helper.io/max-concurrent";

/// Where a submission waits in Kueue: its LocalQueue, and its priority class if it names one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Queueing {
    pub queue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
}

/// The server's side of Kueue (`--kueue`, `--kueue-default-queue`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KueueDefaults {
    /// The LocalQueue of a submission that names none; without one such a submission is
    /// refused.
    pub default_queue: Option<String>,
}

/// `queue` and `priority_class` as sent: with Kueue (`kueue` is `Some`), the queue given or
/// the default one; without it, neither may be named.
pub(crate) fn parse(
    queue: Option<String>,
    priority_class: Option<String>,
    kueue: Option<&KueueDefaults>,
) -> Result<Option<Queueing>, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let Some(kueue) = kueue else {
        const NOT_KUEUE: &str =
            "this server does not submit through Kueue (it was started without --kueue)";
        if queue.is_some() {
            errors.refuse("queue", NOT_KUEUE);
        }
        if priority_class.is_some() {
            errors.refuse("priority_class", NOT_KUEUE);
        }
        return errors.or(None);
    };
    let queue = queue.or_else(|| kueue.default_queue.clone());
    match &queue {
        Some(name) => errors.check("queue", kube_rules::dns1123_subdomain(name)),
        None => errors.refuse(
            "queue",
            "is required: this server submits through Kueue and has no default queue \
             (--kueue-default-queue)",
        ),
    }
    if let Some(class) = &priority_class {
        errors.check("priority_class", kube_rules::dns1123_subdomain(class));
    }
    match queue {
        Some(queue) => errors.or(Some(Queueing {
            queue,
            priority_class,
        })),
        None => Err(errors.into_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kueue(default_queue: Option<&str>) -> KueueDefaults {
        KueueDefaults {
            default_queue: default_queue.map(str::to_owned),
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn a_submission_without_a_queue_takes_the_default_one() {
        let parsed = parse(None, Some("high".into()), Some(&kueue(Some("analysis"))));

        assert_eq!(
            parsed.ok().flatten(),
            Some(Queueing {
                queue: "analysis".into(),
                priority_class: Some("high".into()),
            })
        );
    }

    #[test]
    fn without_a_default_queue_a_submission_must_name_one() {
        let refused = parse(None, None, Some(&kueue(None))).err().map(fields);

        assert_eq!(refused, Some(vec!["queue".to_owned()]));
    }

    #[test]
    fn without_kueue_neither_a_queue_nor_a_priority_class_may_be_named() {
        let refused = parse(Some("analysis".into()), Some("high".into()), None)
            .err()
            .map(fields);

        assert_eq!(
            refused,
            Some(vec!["queue".to_owned(), "priority_class".to_owned()])
        );
        assert_eq!(parse(None, None, None).ok(), Some(None));
    }

    #[test]
    fn names_that_no_kubernetes_object_can_have_are_refused() {
        let refused = parse(
            Some("Not A Queue".into()),
            Some("-x".into()),
            Some(&kueue(None)),
        )
        .err()
        .map(fields);

        assert_eq!(
            refused,
            Some(vec!["queue".to_owned(), "priority_class".to_owned()])
        );
    }
}
