//! The payload's CPU and memory: `resources`, and the helper's `memory` and `cpus` that say
//! the same as its requests.

use std::collections::BTreeMap;

use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::kube_rules;
use crate::domain::submission::defaults::JobDefaults;
use crate::domain::submission::request::Cpus;
use crate::domain::submission::resources::Resources;

/// `resources` with `memory` and `cpus` as its requests, each amount a Kubernetes quantity and
/// no request above its limit; the server's requests fill in what names neither.
pub(crate) fn parse(
    resources: Option<Resources>,
    memory: Option<String>,
    cpus: Option<Cpus>,
    defaults: &JobDefaults,
) -> Result<Resources, Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let mut resources = resources.unwrap_or_default();

    for (field, given, requested) in [
        ("memory", memory, &mut resources.requests.memory),
        (
            "cpus",
            cpus.map(|Cpus(cpus)| cpus),
            &mut resources.requests.cpu,
        ),
    ] {
        let Some(given) = given else { continue };
        match requested {
            Some(other) if *other != given => errors.refuse(
                field,
                format!(
                    "conflicts with resources.requests.{}; give one of them",
                    if field == "cpus" { "cpu" } else { field }
                ),
            ),
            _ => *requested = Some(given),
        }
    }

    let mut parsed = BTreeMap::new();
    for (kind, amounts) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        for (resource, amount) in amounts.pairs() {
            let Some(amount) = amount else { continue };
            match kube_rules::quantity(amount) {
                Ok(value) => {
                    parsed.insert((kind, resource), value);
                }
                Err(reason) => errors.refuse(&format!("resources.{kind}.{resource}"), reason),
            }
        }
    }
    for resource in ["cpu", "memory"] {
        if let (Some(request), Some(limit)) = (
            parsed.get(&("requests", resource)),
            parsed.get(&("limits", resource)),
        ) && request > limit
        {
            errors.refuse(
                &format!("resources.requests.{resource}"),
                format!("must not exceed resources.limits.{resource}"),
            );
        }
    }

    // The server's requests apply where the payload names neither a request nor a limit
    // (given only a limit, Kubernetes requests as much as the limit).
    if resources.requests.memory.is_none() && resources.limits.memory.is_none() {
        resources.requests.memory = defaults.memory.clone();
    }
    if resources.requests.cpu.is_none() && resources.limits.cpu.is_none() {
        resources.requests.cpu = defaults.cpus.clone();
    }
    errors.or(resources)
}
