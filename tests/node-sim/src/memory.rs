//! Running out of memory, on demand: a payload with `NODE_SIM_MEMORY_NEEDED` in its
//! environment needs that much memory (a Kubernetes quantity, `1Gi`), and a container whose
//! memory limit is below it is killed as the kernel's OOM killer would kill it, reported as a
//! kubelet reports it: exit code 137, reason `OOMKilled`. Nothing is allocated here; the tests
//! see the status a real node gives an analysis that needs more memory than it asked for.

use k8s_openapi::api::core::v1::Container;

/// The environment variable that says how much memory the payload needs.
pub const NEEDED: &str = "NODE_SIM_MEMORY_NEEDED";

/// Whether `container` needs more memory than its limit allows.
pub fn runs_out(container: &Container) -> bool {
    let needed = container
        .env
        .iter()
        .flatten()
        .find(|variable| variable.name == NEEDED)
        .and_then(|variable| variable.value.as_deref())
        .and_then(bytes);
    let limit = container
        .resources
        .as_ref()
        .and_then(|resources| resources.limits.as_ref())
        .and_then(|limits| limits.get("memory"))
        .and_then(|quantity| bytes(&quantity.0));
    matches!((needed, limit), (Some(needed), Some(limit)) if needed > limit)
}

/// A memory quantity in bytes: a number with an optional decimal (`k`, `M`, `G`, `T`) or binary
/// (`Ki`, `Mi`, `Gi`, `Ti`) suffix.
fn bytes(quantity: &str) -> Option<f64> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn container(needed: Option<&str>, limit: Option<&str>) -> Container {
        Container {
            name: "payload".into(),
            env: needed.map(|needed| {
                vec![EnvVar {
                    name: NEEDED.into(),
                    value: Some(needed.into()),
                    value_from: None,
                }]
            }),
            resources: limit.map(|limit| ResourceRequirements {
                limits: Some(BTreeMap::from([("memory".into(), Quantity(limit.into()))])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    #[test]
    fn a_payload_needing_more_than_its_limit_runs_out_and_one_within_it_does_not() {
        assert!(runs_out(&container(Some("1Gi"), Some("512Mi"))));
        assert!(runs_out(&container(Some("4001M"), Some("4000M"))));
        assert!(!runs_out(&container(Some("1Gi"), Some("2Gi"))));
        assert!(
            !runs_out(&container(Some("1Gi"), None)),
            "no limit: no OOM kill"
        );
        assert!(!runs_out(&container(None, Some("16Mi"))));
    }
}
