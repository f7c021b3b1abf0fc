//! Running a submission again under its id: the name of each run's Job, what an out-of-memory
//! kill leads to under the submission's `on_oom`, and the changes a user's rerun may make.
//! Pure functions: the controller and the HTTP layer apply them.

use serde::Deserialize;
use utoipa::ToSchema;

use super::defaults::SubmitDefaults;
use super::parse::MAX_TIME_MINUTES;
use super::record::Submission;
use super::request::Cpus;
use super::retry_policy::check_oom_cap;
use super::spec::SubmissionSpec;
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::state::State;
use crate::domain::submission_id::SubmissionId;

/// The Job of a submission's run: its first run's is named after its id alone, each rerun's
/// after the id and the rerun (`sh-…-r1`), so a restart names the same Job and one run never
/// has two.
pub fn job_name(id: SubmissionId, rerun: i64) -> String {
    match rerun {
        0 => id.job_name(),
        n => format!("{}-r{n}", id.job_name()),
    }
}

/// Why `submission` cannot be run again, if it cannot: only a failed or cancelled one can,
/// and never a TES task (its workflow engine retries it).
pub fn not_rerunnable(submission: &Submission) -> Option<String> {
    if submission.spec.tes.is_some() {
        return Some("a TES task is not rerun: its workflow engine retries it".into());
    }
    match submission.progress.state {
        State::Failed | State::Cancelled => None,
        State::Succeeded => {
            Some("the submission succeeded; only a failed or cancelled one is rerun".into())
        }
        active => Some(format!(
            "the submission is {active}; only a failed or cancelled one is rerun"
        )),
    }
}

/// What an out-of-memory kill makes of a submission whose payload has an `on_oom` rule.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterOom {
    /// Run again with this spec (more memory), saying so.
    Rerun {
        spec: Box<SubmissionSpec>,
        message: String,
    },
    /// The cap or the count is reached: the submission fails, saying which.
    Fail { message: String },
}

/// What a kill for memory makes of `spec`, after `oom_reruns` reruns for memory; `None` when
/// the submission has no `on_oom` rule.
pub fn after_oom(spec: &SubmissionSpec, oom_reruns: i64) -> Option<AfterOom> {
    let on_oom = spec.retry_policy.on_oom.as_ref()?;
    let had = memory_of(spec).unwrap_or_else(|| "its memory".into());
    let killed = format!("the payload was killed for memory (OOMKilled) with {had}");
    if oom_reruns >= i64::from(on_oom.max_reruns) {
        return Some(AfterOom::Fail {
            message: format!(
                "{killed} after {oom_reruns} reruns with more memory, the most \
                 retry_policy.on_oom.max_reruns allows"
            ),
        });
    }
    let mut next = spec.clone();
    let mut grew = false;
    for amount in [
        &mut next.resources.requests.memory,
        &mut next.resources.limits.memory,
    ] {
        let Some(current) = amount.as_ref() else {
            continue;
        };
        if let Some(scaled) = scaled_memory(current, on_oom.memory_factor, &on_oom.max_memory) {
            grew = true;
            *amount = Some(scaled);
        }
    }
    if !grew {
        return Some(AfterOom::Fail {
            message: format!(
                "{killed}, as much as retry_policy.on_oom.max_memory ({}) allows",
                on_oom.max_memory
            ),
        });
    }
    let now_has = memory_of(&next).unwrap_or_default();
    Some(AfterOom::Rerun {
        message: format!(
            "{killed}; rerun {} of {} with {now_has}",
            oom_reruns + 1,
            on_oom.max_reruns
        ),
        spec: Box::new(next),
    })
}

/// The memory a payload has: its limit, else its request (as an attempt reports it).
fn memory_of(spec: &SubmissionSpec) -> Option<String> {
    let resources = &spec.resources;
    resources
        .limits
        .memory
        .clone()
        .or_else(|| resources.requests.memory.clone())
}

/// `amount` times `factor`, at most `cap`; `None` if it already is `cap` or more (or either
/// is not a quantity). Keeps the amount's unit where the product is whole in it (`4000M` →
/// `8000M`), else says it in bytes.
pub fn scaled_memory(amount: &str, factor: f64, cap: &str) -> Option<String> {
    let bytes = kube_rules::quantity(amount).ok()?;
    let cap_bytes = kube_rules::quantity(cap).ok()?;
    if bytes >= cap_bytes {
        return None;
    }
    let wanted = bytes * factor;
    if wanted >= cap_bytes {
        return Some(cap.to_owned());
    }
    let split = amount
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e')
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(split);
    if let Ok(number) = number.parse::<f64>() {
        let scaled = number * factor;
        if (scaled * 1000.0).fract() == 0.0 && scaled < 1e15 {
            return Some(format!("{scaled}{unit}"));
        }
    }
    Some(format!("{:.0}", wanted.ceil()))
}

/// What a user's rerun may change; each left out stays as it was.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunChanges {
    /// Memory for the payload, a Kubernetes quantity: its request, and its limit if it has one.
    #[schema(example = "8000M")]
    pub memory: Option<String>,
    /// CPUs for the payload, a number or a Kubernetes quantity: its request, and its limit if
    /// it has one.
    #[schema(value_type = Option<String>, example = "2")]
    pub cpus: Option<Cpus>,
    /// Minutes the payload may run (its Job's `activeDeadlineSeconds` is 60 times this).
    #[schema(minimum = 1, maximum = 5256000, example = 2880)]
    pub time: Option<i64>,
    /// Another image (a fixed release of the analysis, say).
    #[schema(example = "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample:fixed")]
    pub image: Option<String>,
}

impl RerunChanges {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.time.is_none() && self.image.is_none()
    }

    /// Whether each change is valid here, before any submission is read.
    pub fn check(&self, defaults: &SubmitDefaults) -> Result<(), Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        if let Some(memory) = &self.memory {
            errors.check("memory", kube_rules::quantity(memory).map(drop));
        }
        if let Some(Cpus(cpus)) = &self.cpus {
            errors.check("cpus", kube_rules::quantity(cpus).map(drop));
        }
        if let Some(minutes) = self.time
            && !(1..=MAX_TIME_MINUTES).contains(&minutes)
        {
            errors.refuse(
                "time",
                format!("must be between 1 and {MAX_TIME_MINUTES} minutes"),
            );
        }
        if let Some(image) = &self.image {
            errors.check(
                "image",
                kube_rules::image_reference(image)
                    .and_then(|()| defaults.allowed.check_image(image)),
            );
        }
        errors.or(())
    }

    /// `spec` with these changes: a new amount replaces the request, and the limit where
    /// there is one, so that the limit is never below the request.
    pub fn apply(&self, spec: &SubmissionSpec) -> Result<SubmissionSpec, Vec<FieldError>> {
        let mut next = spec.clone();
        let resources = &mut next.resources;
        if let Some(memory) = &self.memory {
            resources.requests.memory = Some(memory.clone());
            if resources.limits.memory.is_some() {
                resources.limits.memory = Some(memory.clone());
            }
        }
        if let Some(Cpus(cpus)) = &self.cpus {
            resources.requests.cpu = Some(cpus.clone());
            if resources.limits.cpu.is_some() {
                resources.limits.cpu = Some(cpus.clone());
            }
        }
        if let Some(minutes) = self.time {
            next.active_deadline_seconds = Some(minutes * 60);
        }
        if let Some(image) = &self.image {
            next.image = image.clone();
        }
        // A new memory above the cap of `on_oom` would make its reruns meaningless.
        if self.memory.is_some() {
            check_oom_cap(&next.retry_policy, &next.resources, "retry_policy").map_err(
                |errors| {
                    errors
                        .into_iter()
                        .map(|error| FieldError::new("memory", error.reason))
                        .collect::<Vec<_>>()
                },
            )?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::SubmissionRequest;

    fn spec(request: serde_json::Value) -> SubmissionSpec {
        let request: SubmissionRequest = serde_json::from_value(request).expect("request");
        SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid")
    }

    fn oom_spec(limit: &str, cap: &str) -> SubmissionSpec {
        spec(json!({
            "image": "busybox",
            "command": "analyze",
            "memory": limit,
            "resources": {"limits": {"memory": limit}},
            "retry_policy": {"on_oom": {"memory_factor": 2.0, "max_memory": cap, "max_reruns": 2}},
        }))
    }

    #[test]
    fn the_first_run_is_named_after_the_id_and_each_rerun_after_its_number() {
        let id: SubmissionId = "01935f2e-8c4a-7b3d-9e2f-123456789abc".parse().expect("id");

        assert_eq!(job_name(id, 0), "sh-01935f2e8c4a7b3d9e2f123456789abc");
        assert_eq!(job_name(id, 2), "sh-01935f2e8c4a7b3d9e2f123456789abc-r2");
    }

    #[test]
    fn memory_grows_by_the_factor_in_its_own_unit_up_to_the_cap() {
        assert_eq!(
            scaled_memory("4000M", 2.0, "16Gi").as_deref(),
            Some("8000M")
        );
        assert_eq!(scaled_memory("1Gi", 1.5, "16Gi").as_deref(), Some("1.5Gi"));
        assert_eq!(
            scaled_memory("3Gi", 1.3, "16Gi").as_deref(),
            Some("4187593114")
        );
        assert_eq!(scaled_memory("12Gi", 2.0, "16Gi").as_deref(), Some("16Gi"));
        assert_eq!(scaled_memory("16Gi", 2.0, "16Gi"), None, "at the cap");
    }

    #[test]
    fn a_kill_for_memory_reruns_with_twice_the_request_and_limit() {
        let Some(AfterOom::Rerun { spec, message }) = after_oom(&oom_spec("1Gi", "16Gi"), 0) else {
            panic!("a rerun")
        };

        assert_eq!(spec.resources.requests.memory.as_deref(), Some("2Gi"));
        assert_eq!(spec.resources.limits.memory.as_deref(), Some("2Gi"));
        assert_eq!(
            message,
            "the payload was killed for memory (OOMKilled) with 1Gi; rerun 1 of 2 with 2Gi"
        );
    }

    #[test]
    fn past_the_count_or_at_the_cap_the_submission_fails_saying_which() {
        let Some(AfterOom::Fail { message: counted }) = after_oom(&oom_spec("1Gi", "16Gi"), 2)
        else {
            panic!("no rerun")
        };
        let Some(AfterOom::Fail { message: capped }) = after_oom(&oom_spec("16Gi", "16Gi"), 0)
        else {
            panic!("no rerun")
        };

        assert!(
            counted.contains("after 2 reruns") && counted.contains("max_reruns"),
            "{counted}"
        );
        assert!(
            capped.contains("with 16Gi") && capped.contains("max_memory (16Gi)"),
            "{capped}"
        );
    }

    #[test]
    fn a_rerun_changes_only_what_it_names_and_keeps_limits_above_requests() {
        let before = oom_spec("1Gi", "16Gi");
        let changes = RerunChanges {
            memory: Some("4Gi".into()),
            time: Some(90),
            ..RerunChanges::default()
        };

        let after = changes.apply(&before).expect("valid");

        assert_eq!(after.resources.requests.memory.as_deref(), Some("4Gi"));
        assert_eq!(after.resources.limits.memory.as_deref(), Some("4Gi"));
        assert_eq!(after.active_deadline_seconds, Some(5400));
        assert_eq!(after.image, before.image);
        assert_eq!(after.command, before.command);
    }

    #[test]
    fn a_rerun_memory_above_the_oom_cap_is_refused_naming_memory() {
        let changes = RerunChanges {
            memory: Some("32Gi".into()),
            ..RerunChanges::default()
        };

        let refused = changes
            .apply(&oom_spec("1Gi", "16Gi"))
            .expect_err("refused");

        assert_eq!(refused[0].field, "memory");
        assert!(refused[0].reason.contains("16Gi"), "{refused:?}");
    }

    #[test]
    fn bad_changes_are_refused_each_by_its_field() {
        let changes: RerunChanges = serde_json::from_value(json!({
            "memory": "lots", "cpus": "-", "time": 0, "image": "no spaces please"
        }))
        .expect("well-formed");

        let refused = changes
            .check(&SubmitDefaults::default())
            .expect_err("refused");

        let fields: Vec<&str> = refused.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["memory", "cpus", "time", "image"]);
    }
}
