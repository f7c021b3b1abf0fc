//! One request parsed: each group of fields by its own parser, every bad field reported at
//! once. What `depends_on` names is resolved among the submissions of the whole request, in
//! `new_submissions.rs`.

use crate::domain::campaign::{self, Dependency};
use crate::domain::field_error::{FieldError, FieldErrors};
use crate::domain::submission::defaults::SubmitDefaults;
use crate::domain::submission::queueing;
use crate::domain::submission::request::SubmissionRequest;
use crate::domain::submission::retry_policy;
use crate::domain::submission::spec::SubmissionSpec;

use super::retries_and_deadlines::{self, Given};
use super::{env_and_labels, image_and_command, notify, resources, tool, volume};

/// A request's own fields, parsed, and the entries of its `depends_on` still to resolve.
#[derive(Debug)]
pub(crate) struct Fields {
    /// The submission's `name` as sent, by which other submissions of the request may name it.
    pub name: Option<String>,
    /// Everything but `depends_on`, which is left empty.
    pub spec: Result<SubmissionSpec, Vec<FieldError>>,
    pub depends_on: Vec<String>,
}

impl Fields {
    pub(crate) fn parse(request: SubmissionRequest, defaults: &SubmitDefaults) -> Self {
        // Taken apart whole, so that a new field of the request cannot be left unparsed.
        let SubmissionRequest {
            name,
            image,
            command,
            registry_secret,
            volume_claim,
            mount_path,
            env,
            labels,
            resources,
            backoff_limit,
            active_deadline_seconds,
            ttl_seconds_after_finished,
            identifier,
            time,
            memory,
            cpus,
            retries,
            retry_policy,
            tool,
            depends_on,
            notify_url,
            notify,
            queue,
            priority_class,
            cluster,
        } = request;
        let sent_name = name.clone();

        let mut errors = FieldErrors::default();
        let name = errors.take(env_and_labels::name(name));
        let payload = errors.take(image_and_command::parse(
            image,
            command,
            registry_secret,
            defaults,
        ));
        let volume = errors.take(volume::parse(volume_claim, mount_path, defaults));
        let env_and_labels = errors.take(env_and_labels::parse(env, labels, identifier));
        let resources = errors.take(resources::parse(resources, memory, cpus, &defaults.job));
        let retries_and_deadlines = errors.take(retries_and_deadlines::parse(
            Given {
                retries,
                backoff_limit,
                time,
                active_deadline_seconds,
                ttl_seconds_after_finished,
            },
            &defaults.job,
        ));
        let retry_policy = errors.take(retry_policy::check(
            retry_policy.unwrap_or_else(|| defaults.job.retry_policy.clone()),
            "retry_policy",
        ));
        if let (Some(policy), Some(resources)) = (&retry_policy, &resources) {
            errors.take(retry_policy::check_oom_cap(
                policy,
                resources,
                "retry_policy",
            ));
        }
        let command = payload.as_ref().map(|payload| payload.command.as_str());
        let tool = errors.take(tool::parse(tool, command));
        let notify = errors.take(notify::parse(
            notify_url,
            notify,
            &defaults.allowed.notify_hosts,
        ));

        let queueing = errors.take(queueing::parse(
            queue,
            priority_class,
            defaults.kueue.as_ref(),
        ));

        let cluster = errors.take(parse_cluster("cluster", cluster, &defaults.clusters));

        let spec = match (
            name,
            payload,
            volume,
            env_and_labels,
            resources,
            retries_and_deadlines,
            tool,
            notify,
            retry_policy,
            queueing,
            cluster,
        ) {
            (
                Some(name),
                Some(payload),
                Some(volume),
                Some(env_and_labels),
                Some(resources),
                Some(retries_and_deadlines),
                Some(tool),
                Some(notify),
                Some(retry_policy),
                Some(queueing),
                Some(cluster),
            ) => errors.or(SubmissionSpec {
                name,
                image: payload.image,
                command: payload.command,
                registry_secret: payload.registry_secret,
                volume,
                env: env_and_labels.env,
                labels: env_and_labels.labels,
                resources,
                backoff_limit: retries_and_deadlines.backoff_limit,
                retry_policy,
                active_deadline_seconds: retries_and_deadlines.active_deadline_seconds,
                ttl_seconds_after_finished: retries_and_deadlines.ttl_seconds_after_finished,
                tool,
                depends_on: Vec::new(),
                notify,
                queueing,
                tes: None,
                cluster,
            }),
            _ => Err(errors.into_vec()),
        };
        Fields {
            name: sent_name,
            spec,
            depends_on,
        }
    }
}

/// A submission's `cluster` (sent as `field`): one of the server's, by name.
pub(crate) fn parse_cluster(
    field: &str,
    cluster: Option<String>,
    known: &[String],
) -> Result<Option<String>, Vec<FieldError>> {
    match cluster {
        Some(name) if !known.contains(&name) => Err(vec![FieldError::new(
            field,
            format!(
                "no cluster is named {name:?} here; this server has: {}",
                known.join(", ")
            ),
        )]),
        cluster => Ok(cluster),
    }
}

impl SubmissionSpec {
    /// Parses a request sent alone, collecting every field error at once. Its `depends_on`
    /// can only name stored submissions, by id, and whose they are is not checked: the API
    /// parses what it is sent with [`crate::domain::NewSubmissions`], which checks that too.
    pub fn parse(
        request: SubmissionRequest,
        defaults: &SubmitDefaults,
    ) -> Result<Self, Vec<FieldError>> {
        let Fields {
            name,
            spec,
            depends_on,
        } = Fields::parse(request, defaults);
        let resolved = campaign::resolve(&[(name.as_deref(), depends_on.as_slice())]);
        match (spec, resolved) {
            (Ok(mut spec), Ok(resolved)) => {
                spec.depends_on = resolved
                    .into_iter()
                    .flatten()
                    .filter_map(|dependency| match dependency {
                        Dependency::Stored(id) => Some(id),
                        // A request of one has no other submission to name.
                        Dependency::Sent(_) => None,
                    })
                    .collect();
                Ok(spec)
            }
            (spec, resolved) => {
                let mut errors = spec.err().unwrap_or_default();
                errors.extend(resolved.err().into_iter().flatten().map(|(_, error)| error));
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{AllowLists, Amounts, Resources, Volume};

    fn request(command: &str) -> SubmissionRequest {
        SubmissionRequest {
            image: Some("atlas/analysisbase:21.2.171".into()),
            command: Some(command.into()),
            ..Default::default()
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn a_minimal_request_takes_the_seed_defaults() {
        let spec = SubmissionSpec::parse(request("echo hi"), &SubmitDefaults::default());

        let spec = spec.expect("valid");
        assert_eq!(
            spec.registry_secret.as_deref(),
            Some("sh-k8s-registry-secret")
        );
        assert_eq!(
            spec.volume,
            Some(Volume {
                claim: "ntuples-claim".into(),
                mount_path: "/ntuples".into()
            })
        );
        assert_eq!(spec.backoff_limit, 3);
        assert_eq!(spec.active_deadline_seconds, Some(86400));
        assert_eq!(spec.resources.requests.memory.as_deref(), Some("4000M"));
        assert_eq!(spec.resources.requests.cpu.as_deref(), Some("1"));
        assert_eq!(spec.ttl_seconds_after_finished, Some(86400));
        assert_eq!(spec.tool, "echo");
    }

    #[test]
    fn the_helpers_own_words_set_the_same_fields() {
        let request: SubmissionRequest = serde_json::from_value(serde_json::json!({
            "image": "img", "command": "analyze.py config/master/analyze.cfg",
            "identifier": "ttbar", "time": 90, "memory": "2G", "cpus": 0.5, "retries": 1
        }))
        .expect("json");

        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");

        assert_eq!(
            spec.labels.get("identifier").map(String::as_str),
            Some("ttbar")
        );
        assert_eq!(spec.active_deadline_seconds, Some(90 * 60));
        assert_eq!(spec.resources.requests.memory.as_deref(), Some("2G"));
        assert_eq!(spec.resources.requests.cpu.as_deref(), Some("0.5"));
        assert_eq!(spec.backoff_limit, 1);
        assert_eq!(spec.tool, "analyze");
    }

    #[test]
    fn one_thing_said_twice_differently_is_refused_naming_both() {
        let request: SubmissionRequest = serde_json::from_value(serde_json::json!({
            "image": "img", "command": "true",
            "identifier": "a", "labels": {"identifier": "b"},
            "time": 10, "active_deadline_seconds": 600,
            "memory": "1G", "resources": {"requests": {"memory": "2G"}},
            "retries": 1, "backoff_limit": 2
        }))
        .expect("json");

        let errors =
            SubmissionSpec::parse(request, &SubmitDefaults::default()).expect_err("invalid");

        assert_eq!(fields(errors), ["identifier", "memory", "retries", "time"]);
    }

    #[test]
    fn a_limit_without_a_request_is_not_exceeded_by_the_default_request() {
        let request: SubmissionRequest = serde_json::from_value(serde_json::json!({
            "image": "img", "command": "true", "resources": {"limits": {"memory": "1Gi"}}
        }))
        .expect("json");

        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");

        assert_eq!(spec.resources.requests.memory, None);
        assert_eq!(spec.resources.requests.cpu.as_deref(), Some("1"));
    }

    #[test]
    fn null_asks_for_no_secret_and_no_volume() {
        let request: SubmissionRequest = serde_json::from_str(
            r#"{"image": "img", "command": "true", "registry_secret": null, "volume_claim": null}"#,
        )
        .expect("json");

        let spec = SubmissionSpec::parse(request, &SubmitDefaults::default()).expect("valid");

        assert_eq!(spec.registry_secret, None);
        assert_eq!(spec.volume, None);
    }

    #[test]
    fn the_server_default_image_is_used_when_none_is_given() {
        let defaults = SubmitDefaults {
            image: Some("default/image:1".into()),
            ..Default::default()
        };
        let mut request = request("true");
        request.image = None;

        let spec = SubmissionSpec::parse(request, &defaults).expect("valid");

        assert_eq!(spec.image, "default/image:1");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let request = SubmissionRequest {
            name: Some("bad name".into()),
            image: None,
            command: Some("  ".into()),
            registry_secret: Some(Some("Bad_Secret".into())),
            volume_claim: Some(Some("claim".into())),
            mount_path: Some("relative".into()),
            env: BTreeMap::from([("1X".into(), "v".into())]),
            labels: BTreeMap::from([
                ("app".into(), "mine".into()),
                ("ok".into(), "bad value".into()),
            ]),
            resources: Some(Resources {
                requests: Amounts {
                    cpu: Some("2".into()),
                    memory: Some("lots".into()),
                },
                limits: Amounts {
                    cpu: Some("1".into()),
                    memory: None,
                },
            }),
            backoff_limit: Some(-1),
            active_deadline_seconds: Some(0),
            ttl_seconds_after_finished: Some(-5),
            identifier: Some("bad value".into()),
            tool: Some("Bad_Tool".into()),
            ..SubmissionRequest::default()
        };

        let errors =
            SubmissionSpec::parse(request, &SubmitDefaults::default()).expect_err("invalid");

        assert_eq!(
            fields(errors),
            [
                "name",
                "image",
                "command",
                "registry_secret",
                "mount_path",
                "env.1X",
                "identifier",
                "labels.app",
                "labels.ok",
                "resources.requests.memory",
                "resources.requests.cpu",
                "backoff_limit",
                "active_deadline_seconds",
                "ttl_seconds_after_finished",
                "tool",
            ]
        );
    }

    #[test]
    fn names_outside_the_server_allow_lists_are_refused() {
        let defaults = SubmitDefaults {
            registry_secret: None,
            volume_claim: None,
            allowed: AllowLists {
                image_prefixes: vec!["registry.example.org/atlas/".into()],
                volume_claims: vec!["ntuples-claim".into()],
                registry_secrets: vec!["sh-k8s-registry-secret".into()],
                notify_hosts: Vec::new(),
            },
            ..SubmitDefaults::default()
        };
        let mut allowed = request("true");
        allowed.image = Some("registry.example.org/atlas/cafexample:1".into());
        allowed.volume_claim = Some(Some("ntuples-claim".into()));
        let refused = SubmissionRequest {
            image: Some("docker.io/evil/miner".into()),
            command: Some("true".into()),
            volume_claim: Some(Some("other-claim".into())),
            registry_secret: Some(Some("someone-elses-secret".into())),
            ..SubmissionRequest::default()
        };

        assert!(SubmissionSpec::parse(allowed, &defaults).is_ok());
        let errors = SubmissionSpec::parse(refused, &defaults).expect_err("refused");
        assert_eq!(fields(errors), ["image", "registry_secret", "volume_claim"]);
    }

    #[test]
    fn a_mount_path_without_a_volume_is_refused() {
        let mut request = request("true");
        request.volume_claim = Some(None);
        request.mount_path = Some("/data".into());

        let errors =
            SubmissionSpec::parse(request, &SubmitDefaults::default()).expect_err("invalid");

        assert_eq!(fields(errors), ["mount_path"]);
    }
}
