//! What a failed pod means, by its cause: rules on the payload's exit code, which become the
//! Job's `podFailurePolicy` after the rule that no disruption (eviction, preemption, a node
//! drain) ever counts. A known "bad input" code can fail the submission at once instead of
//! burning its retries, and a code that says "try again later" can be retried without counting.
//! An out-of-memory kill can run the payload again with more memory (`on_oom`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::resources::Resources;
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;

/// Rules Kubernetes takes in one pod failure policy, less the one for disruptions.
pub const MAX_EXIT_CODE_RULES: usize = 19;

/// How a submission's failed pods are treated by cause.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Rules on the payload's exit code, the first that matches applies; a code no rule names
    /// counts against `retries`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 19)]
    pub on_exit_codes: Vec<ExitCodeRule>,
    /// A pod killed for memory (`OOMKilled`) ends its Job at once, and the submission runs
    /// again in a new Job (`...-r1`) with its memory request and limit multiplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_oom: Option<OnOom>,
}

impl RetryPolicy {
    pub fn is_empty(&self) -> bool {
        self.on_exit_codes.is_empty() && self.on_oom.is_none()
    }
}

/// The exit code of a container the kernel's OOM killer ended (SIGKILL).
pub const OOM_EXIT_CODE: i32 = 137;

/// How a submission whose payload was killed for memory runs again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnOom {
    /// Memory request and limit are multiplied by this at each rerun; more than 1.
    #[serde(default = "default_memory_factor")]
    #[schema(example = 2.0, minimum = 1, maximum = 16)]
    pub memory_factor: f64,
    /// The most memory a rerun gets, a Kubernetes quantity: a rerun that would ask for more
    /// gets this; a pod killed with this much ends the submission.
    #[schema(example = "16Gi")]
    pub max_memory: String,
    /// The most reruns for memory; one more kill ends the submission.
    #[serde(default = "default_max_reruns")]
    #[schema(minimum = 1, maximum = 10, example = 2)]
    pub max_reruns: u32,
}

fn default_memory_factor() -> f64 {
    2.0
}

fn default_max_reruns() -> u32 {
    2
}

/// The highest `memory_factor` and `max_reruns`: past them a rerun asks for absurd amounts.
pub const MAX_MEMORY_FACTOR: f64 = 16.0;
pub const MAX_OOM_RERUNS: u32 = 10;

/// What a pod that exited with one of `codes` does to its submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitCodeRule {
    /// Exit codes from 1 to 255, each in one rule only.
    #[schema(min_items = 1, max_items = 255, example = json!([2, 42]))]
    pub codes: Vec<i32>,
    #[serde(default)]
    pub action: ExitCodeAction,
}

/// `fail`: the submission fails at once, retries left or not (Kubernetes' `FailJob`);
/// `ignore`: the pod is replaced without counting against `retries` (`Ignore`); `count`: it
/// counts, as a failure no rule names does (`Count`, the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExitCodeAction {
    Fail,
    Ignore,
    #[default]
    Count,
}

impl ExitCodeAction {
    /// The action's name in a Job's pod failure policy.
    pub fn kubernetes_name(self) -> &'static str {
        match self {
            ExitCodeAction::Fail => "FailJob",
            ExitCodeAction::Ignore => "Ignore",
            ExitCodeAction::Count => "Count",
        }
    }
}

/// `policy` as sent in field `field`, checked: every bad rule is named.
pub fn check(policy: RetryPolicy, field: &str) -> Result<RetryPolicy, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    if policy.on_exit_codes.len() > MAX_EXIT_CODE_RULES {
        errors.refuse(
            &format!("{field}.on_exit_codes"),
            format!("must have at most {MAX_EXIT_CODE_RULES} rules"),
        );
    }
    let mut seen = BTreeSet::new();
    for (index, rule) in policy.on_exit_codes.iter().enumerate() {
        let codes = format!("{field}.on_exit_codes[{index}].codes");
        if rule.codes.is_empty() {
            errors.refuse(&codes, "must name at least one exit code");
        }
        for code in &rule.codes {
            if !(1..=255).contains(code) {
                errors.refuse(
                    &codes,
                    format!("{code} is no failure's exit code: codes are 1 to 255"),
                );
            } else if !seen.insert(*code) {
                errors.refuse(&codes, format!("{code} is named twice"));
            } else if *code == OOM_EXIT_CODE && policy.on_oom.is_some() {
                errors.refuse(
                    &codes,
                    format!("{code} is the exit code of an out-of-memory kill, which on_oom rules"),
                );
            }
        }
    }
    if let Some(on_oom) = &policy.on_oom {
        let factor = on_oom.memory_factor;
        if !(factor > 1.0 && factor <= MAX_MEMORY_FACTOR) {
            errors.refuse(
                &format!("{field}.on_oom.memory_factor"),
                format!("must be more than 1 and at most {MAX_MEMORY_FACTOR}, not {factor}"),
            );
        }
        if let Err(reason) = kube_rules::quantity(&on_oom.max_memory) {
            errors.refuse(&format!("{field}.on_oom.max_memory"), reason);
        }
        if !(1..=MAX_OOM_RERUNS).contains(&on_oom.max_reruns) {
            errors.refuse(
                &format!("{field}.on_oom.max_reruns"),
                format!("must be 1 to {MAX_OOM_RERUNS}"),
            );
        }
    }
    errors.or(policy)
}

/// Whether `on_oom`'s cap leaves room to rerun the payload: it must be at least the memory
/// the submission asks for, and there must be memory to multiply.
pub fn check_oom_cap(
    policy: &RetryPolicy,
    resources: &Resources,
    field: &str,
) -> Result<(), Vec<FieldError>> {
    let Some(on_oom) = &policy.on_oom else {
        return Ok(());
    };
    let mut errors = FieldErrors::default();
    let Ok(cap) = kube_rules::quantity(&on_oom.max_memory) else {
        // Refused by `check` already.
        return Ok(());
    };
    let asked = [&resources.requests.memory, &resources.limits.memory]
        .into_iter()
        .flatten()
        .filter_map(|amount| Some((amount, kube_rules::quantity(amount).ok()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match asked {
        None => errors.refuse(
            &format!("{field}.on_oom"),
            "needs a memory request or limit to multiply (memory or resources.limits.memory)",
        ),
        Some((amount, asked)) if cap < asked => errors.refuse(
            &format!("{field}.on_oom.max_memory"),
            format!(
                "{} is below the {amount} the submission asks for",
                on_oom.max_memory
            ),
        ),
        Some(_) => {}
    }
    errors.or(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checked(policy: serde_json::Value) -> Result<RetryPolicy, Vec<String>> {
        let policy: RetryPolicy = serde_json::from_value(policy).expect("well-formed");
        check(policy, "retry_policy")
            .map_err(|errors| errors.into_iter().map(|error| error.field).collect())
    }

    #[test]
    fn rules_keep_their_order_and_count_is_the_default_action() {
        let policy = checked(json!({"on_exit_codes": [
            {"codes": [42], "action": "fail"},
            {"codes": [75, 2], "action": "ignore"},
            {"codes": [3]},
        ]}))
        .expect("valid");

        let actions: Vec<ExitCodeAction> = policy
            .on_exit_codes
            .iter()
            .map(|rule| rule.action)
            .collect();
        assert_eq!(
            actions,
            [
                ExitCodeAction::Fail,
                ExitCodeAction::Ignore,
                ExitCodeAction::Count
            ]
        );
    }

    #[test]
    fn a_code_named_twice_out_of_range_or_no_code_is_refused_naming_its_rule() {
        let refused = checked(json!({"on_exit_codes": [
            {"codes": [42], "action": "fail"},
            {"codes": [42, 0, 256], "action": "ignore"},
            {"codes": []},
        ]}))
        .expect_err("refused");

        assert_eq!(
            refused,
            [
                "retry_policy.on_exit_codes[1].codes",
                "retry_policy.on_exit_codes[1].codes",
                "retry_policy.on_exit_codes[1].codes",
                "retry_policy.on_exit_codes[2].codes"
            ]
        );
    }

    #[test]
    fn an_unknown_action_is_not_a_policy() {
        let sent = json!({"on_exit_codes": [{"codes": [1], "action": "retry"}]});

        assert!(serde_json::from_value::<RetryPolicy>(sent).is_err());
    }
}
