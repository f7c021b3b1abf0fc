//! The Job manifest: one pure function from a stored submission to the `batch/v1` Job the
//! service creates for it. No I/O here, so the whole manifest is pinned by a snapshot test.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, LocalObjectReference, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::domain::{
    ADMISSION_GATE, ADMISSION_GATE_ANNOTATION, APP_LABEL, APP_LABEL_VALUE, Amounts, NAME_LABEL,
    OOM_EXIT_CODE, OWNER_LABEL, PRIORITY_CLASS_LABEL, QUEUE_NAME_LABEL, Queueing, RetryPolicy,
    SUBMISSION_ID_LABEL, Submission,
};

const VOLUME_NAME: &str = "data";

/// The labels on a submission's Job and pods: ours first, so a user label can never replace them
/// (the domain refuses such labels; this order makes sure of it).
pub fn labels(submission: &Submission) -> BTreeMap<String, String> {
    let mut labels = submission.spec.labels.clone();
    if let Some(name) = &submission.spec.name {
        labels.insert(NAME_LABEL.into(), name.clone());
    }
    labels.insert(OWNER_LABEL.into(), submission.owner.clone());
    labels.insert(APP_LABEL.into(), APP_LABEL_VALUE.into());
    labels.insert(SUBMISSION_ID_LABEL.into(), submission.id.to_string());
    labels
}

/// The server's settings for every payload pod (not chosen by users).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodSettings {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub image_pull_policy: ImagePullPolicy,
}

/// When the kubelet pulls a payload's image. `Always` by default, as the helper did: a tag
/// pushed again (`:latest`, a fixed analysis tag) runs what was pushed last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ImagePullPolicy {
    #[default]
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// The Job that runs `submission`'s payload.
///
/// The command is passed as one argument of `bash -cl`, never spliced into a shell string, so no
/// quoting in it can escape. Payload pods get no service account token: the service's own
/// credentials must never reach user code. A payload that exits non-zero uses up one of its
/// retries (`backoffLimit`); a pod evicted or disrupted (a drain, a preemption, a lost node: the
/// `DisruptionTarget` condition) is replaced without using one, since the payload did not fail.
pub fn job(submission: &Submission, settings: &PodSettings) -> Job {
    let spec = &submission.spec;
    let labels = labels(submission);

    let (volumes, volume_mounts) = match &spec.volume {
        Some(volume) => (
            Some(vec![Volume {
                name: VOLUME_NAME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: volume.claim.clone(),
                    read_only: None,
                }),
                ..Volume::default()
            }]),
            Some(vec![VolumeMount {
                name: VOLUME_NAME.into(),
                mount_path: volume.mount_path.clone(),
                ..VolumeMount::default()
            }]),
        ),
        None => (None, None),
    };

    let env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect();

    let container = Container {
        name: spec.tool.clone(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.as_str().into()),
        command: Some(vec!["bash".into(), "-cl".into(), spec.command.clone()]),
        env: (!env.is_empty()).then_some(env),
        resources: resources(&spec.resources.requests, &spec.resources.limits),
        volume_mounts,
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };

    let mut job = Job {
        metadata: ObjectMeta {
            name: Some(submission.job_name.clone()),
            namespace: Some(submission.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(spec.backoff_limit),
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            pod_failure_policy: Some(failure_policy(&spec.retry_policy)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    security_context: pod_security(settings),
                    image_pull_secrets: spec
                        .registry_secret
                        .as_ref()
                        .map(|name| vec![LocalObjectReference { name: name.clone() }]),
                    volumes,
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    };
    if let Some(queueing) = &spec.queueing {
        through_kueue(&mut job, queueing);
    }
    if let Some(plan) = &spec.tes
        && let Some(job) = job.spec.as_mut()
        && let Some(pod) = job.template.spec.as_mut()
    {
        super::tes_pod::apply(plan, pod);
        let rules = super::tes_pod::own_steps_fail_the_job(pod);
        if let Some(policy) = job.pod_failure_policy.as_mut() {
            policy.rules.extend(rules);
        }
    }
    job
}

/// Puts the Job in its Kueue queue: the queue's (and priority class's) labels on the Job, and
/// created suspended, so that it waits until Kueue admits it and lets it run. Kueue reads the
/// quota a Job needs from its containers' requests, which every payload container has.
fn through_kueue(job: &mut Job, queueing: &Queueing) {
    let labels = job.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(QUEUE_NAME_LABEL.into(), queueing.queue.clone());
    if let Some(class) = &queueing.priority_class {
        labels.insert(PRIORITY_CLASS_LABEL.into(), class.clone());
    }
    if let Some(spec) = job.spec.as_mut() {
        spec.suspend = Some(true);
    }
}

/// Puts Kueue's admission gate on a Job of a submission under a limit of concurrent Jobs
/// (`Submission::gated`): Kueue keeps it in its queue, unadmitted, until the dispatcher lifts
/// the gate (`Cluster::lift_gate`) while the limit has room.
pub fn gate_admission(job: &mut Job) {
    job.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ADMISSION_GATE_ANNOTATION.into(), ADMISSION_GATE.into());
}

/// Whether a Job still carries our admission gate.
pub fn is_gated(job: &Job) -> bool {
    gates(job).any(|gate| gate == ADMISSION_GATE)
}

/// The admission gates of other controllers on a Job, as the annotation names them; `None`
/// when ours is the only one (the annotation is then removed with it).
pub fn other_gates(job: &Job) -> Option<String> {
    let others: Vec<&str> = gates(job).filter(|gate| *gate != ADMISSION_GATE).collect();
    (!others.is_empty()).then(|| others.join(","))
}

/// The admission gates a Job names.
fn gates(job: &Job) -> impl Iterator<Item = &str> {
    job.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(ADMISSION_GATE_ANNOTATION))
        .into_iter()
        .flat_map(|gates| gates.split(',').map(str::trim))
}

/// First, failures of pods with the `DisruptionTarget` condition are ignored; then the
/// submission's rules on exit codes, in order, and with `on_oom` the kill for memory's code.
/// Every other failure counts against `backoffLimit`, as without a policy.
fn failure_policy(retry_policy: &RetryPolicy) -> PodFailurePolicy {
    let disruptions = PodFailurePolicyRule {
        action: "Ignore".into(),
        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
            type_: "DisruptionTarget".into(),
            status: Some("True".into()),
        }]),
        on_exit_codes: None,
    };
    let exit_codes = retry_policy.on_exit_codes.iter().map(|rule| {
        let mut codes = rule.codes.clone();
        codes.sort_unstable();
        PodFailurePolicyRule {
            action: rule.action.kubernetes_name().into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: codes,
            }),
            on_pod_conditions: None,
        }
    });
    // A kill for memory ends the Job at once, without a retry: the service runs the payload
    // again in a new Job with more memory.
    let oom = retry_policy.on_oom.as_ref().map(|_| PodFailurePolicyRule {
        action: "FailJob".into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: None,
            operator: "In".into(),
            values: vec![OOM_EXIT_CODE],
        }),
        on_pod_conditions: None,
    });
    PodFailurePolicy {
        rules: std::iter::once(disruptions)
            .chain(exit_codes)
            .chain(oom)
            .collect(),
    }
}

fn pod_security(settings: &PodSettings) -> Option<PodSecurityContext> {
    let PodSettings {
        run_as_user,
        run_as_group,
        ..
    } = *settings;
    (run_as_user.is_some() || run_as_group.is_some()).then(|| PodSecurityContext {
        run_as_user,
        run_as_group,
        run_as_non_root: run_as_user.map(|uid| uid != 0),
        ..PodSecurityContext::default()
    })
}

fn resources(requests: &Amounts, limits: &Amounts) -> Option<ResourceRequirements> {
    let to_map = |amounts: &Amounts| {
        let map: BTreeMap<String, Quantity> = [("cpu", &amounts.cpu), ("memory", &amounts.memory)]
            .into_iter()
            .filter_map(|(name, amount)| Some((name.to_owned(), Quantity(amount.clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let (requests, limits) = (to_map(requests), to_map(limits));
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::domain::{
        ExitCodeAction, ExitCodeRule, OnOom, Progress, Resources, SubmissionId, SubmissionSpec,
        Volume as SpecVolume,
    };

    fn submission(spec: SubmissionSpec) -> Submission {
        let id = SubmissionId::from_str("01935f2e-8c4a-7b3d-9e2f-123456789abc").expect("uuid");
        Submission {
            id,
            owner: "alice".into(),
            submitted_by: "portal".into(),
            job_name: id.job_name(),
            namespace: "analysis".into(),
            spec,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            progress: Progress::queued(),
            limits: Default::default(),
            notify_token: None,
            reruns: 0,
            oom_reruns: 0,
            gated: false,
            cluster: None,
        }
    }

    #[test]
    fn a_submission_through_kueue_is_created_suspended_in_its_queue() {
        let spec = SubmissionSpec {
            queueing: Some(Queueing {
                queue: "analysis".into(),
                priority_class: Some("high".into()),
            }),
            ..full_spec()
        };

        let job = job(&submission(spec), &PodSettings::default());

        let labels = job.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(QUEUE_NAME_LABEL).map(String::as_str),
            Some("analysis")
        );
        assert_eq!(
            labels.get(PRIORITY_CLASS_LABEL).map(String::as_str),
            Some("high")
        );
        let spec = job.spec.expect("spec");
        assert_eq!(spec.suspend, Some(true));
        let pod = spec.template.spec.expect("pod");
        assert!(
            pod.containers
                .iter()
                .chain(pod.init_containers.iter().flatten())
                .all(|container| container
                    .resources
                    .as_ref()
                    .is_some_and(|resources| resources.requests.is_some())),
            "Kueue counts requests"
        );
        let pod_labels = spec
            .template
            .metadata
            .and_then(|meta| meta.labels)
            .unwrap_or_default();
        assert!(
            !pod_labels.contains_key(QUEUE_NAME_LABEL),
            "the Job's, not its pods'"
        );
    }

    #[test]
    fn a_gated_job_names_our_gate_and_is_gated_until_only_others_remain() {
        let mut gated = job(&submission(full_spec()), &PodSettings::default());
        assert!(!is_gated(&gated));

        gate_admission(&mut gated);

        assert_eq!(
            gated
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .get(ADMISSION_GATE_ANNOTATION)
                .map(String::as_str),
            Some("submission-helper.io/max-concurrent")
        );
        assert!(is_gated(&gated));
        let others = BTreeMap::from([(
            ADMISSION_GATE_ANNOTATION.to_owned(),
            "example.com/other".to_owned(),
        )]);
        gated.metadata.annotations = Some(others);
        assert!(!is_gated(&gated), "another controller's gate is not ours");
        gate_admission(&mut gated);
        assert_eq!(
            other_gates(&gated).as_deref(),
            None,
            "gate_admission replaces the annotation"
        );
        let both = BTreeMap::from([(
            ADMISSION_GATE_ANNOTATION.to_owned(),
            "example.com/other, submission-helper.io/max-concurrent".to_owned(),
        )]);
        gated.metadata.annotations = Some(both);
        assert!(is_gated(&gated));
        assert_eq!(other_gates(&gated).as_deref(), Some("example.com/other"));
    }

    #[test]
    fn without_kueue_a_job_is_created_runnable() {
        let job = job(&submission(full_spec()), &PodSettings::default());

        assert_eq!(job.spec.and_then(|spec| spec.suspend), None);
        assert!(
            !job.metadata
                .labels
                .unwrap_or_default()
                .contains_key(QUEUE_NAME_LABEL)
        );
    }

    fn full_spec() -> SubmissionSpec {
        SubmissionSpec {
            name: Some("ttbar-2018".into()),
            image: "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample".into(),
            command:
                "analyze config/master/analyze.cfg --restrict \"/bkg/[ee+mm]\" && echo '$HOME'"
                    .into(),
            registry_secret: Some("sh-k8s-registry-secret".into()),
            volume: Some(SpecVolume {
                claim: "ntuples-claim".into(),
                mount_path: "/ntuples".into(),
            }),
            env: BTreeMap::from([
                ("CAF_CONFIG".into(), "analyze.cfg".into()),
                ("NEVENTS".into(), "1000".into()),
            ]),
            labels: BTreeMap::from([("campaign".into(), "mc16e".into())]),
            resources: Resources {
                requests: Amounts {
                    cpu: Some("500m".into()),
                    memory: Some("1Gi".into()),
                },
                limits: Amounts {
                    cpu: None,
                    memory: Some("2Gi".into()),
                },
            },
            backoff_limit: 2,
            retry_policy: RetryPolicy {
                on_exit_codes: vec![
                    ExitCodeRule {
                        codes: vec![42, 2],
                        action: ExitCodeAction::Fail,
                    },
                    ExitCodeRule {
                        codes: vec![75],
                        action: ExitCodeAction::Ignore,
                    },
                ],
                on_oom: Some(OnOom {
                    memory_factor: 2.0,
                    max_memory: "16Gi".into(),
                    max_reruns: 2,
                }),
            },
            active_deadline_seconds: Some(3600),
            ttl_seconds_after_finished: Some(86400),
            tool: "analyze".into(),
            depends_on: Vec::new(),
            notify: None,
            queueing: None,
            tes: None,
            cluster: None,
        }
    }

    #[test]
    fn a_minimal_submission_gets_the_helpers_job_defaults() {
        let request: crate::domain::SubmissionRequest = serde_json::from_value(serde_json::json!({
            "image": "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
            "command": "analyze.py config/master/analyze.cfg",
            "identifier": "ttbar-2018"
        }))
        .expect("request");
        let spec = SubmissionSpec::parse(request, &crate::domain::SubmitDefaults::default())
            .expect("valid");

        let job = job(&submission(spec), &PodSettings::default());

        insta::assert_yaml_snapshot!(job);
    }

    #[test]
    fn the_job_manifest_has_every_field_the_seed_describes() {
        let settings = PodSettings {
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            image_pull_policy: ImagePullPolicy::IfNotPresent,
        };

        let job = job(&submission(full_spec()), &settings);

        insta::assert_yaml_snapshot!(job);
    }

    #[test]
    fn a_submission_without_secret_volume_or_resources_gets_none() {
        let mut spec = full_spec();
        spec.registry_secret = None;
        spec.volume = None;
        spec.resources = Resources::default();
        // Without memory there is nothing to raise after a kill for memory.
        spec.retry_policy.on_oom = None;
        spec.env.clear();

        let job = job(&submission(spec), &PodSettings::default());

        insta::assert_yaml_snapshot!(job);
    }

    #[test]
    fn the_command_is_one_argument_of_bash_login_shell() {
        let spec = full_spec();
        let command = spec.command.clone();

        let job = job(&submission(spec), &PodSettings::default());

        let container = job
            .spec
            .and_then(|spec| spec.template.spec)
            .map(|pod| pod.containers)
            .and_then(|containers| containers.into_iter().next())
            .expect("one container");
        assert_eq!(
            container.command,
            Some(vec!["bash".to_string(), "-cl".to_string(), command])
        );
    }
}
