//! What submissions get from the server: the defaults for the fields they leave out, what they
//! may name, how their pods run, and how many of a user's Jobs may be active at once.

use clap::Args;
use clap::builder::TypedValueParser;

use super::values::{
    OrNone, image, minutes_or_unlimited, mount_path, named, object_name, or_none, quantity,
    retries, retry_policy, seconds_or_never,
};
use crate::cluster::dispatch;
use crate::cluster::manifest::{ImagePullPolicy, PodSettings};
use crate::domain::{AllowLists, JobDefaults, RetryPolicy, SubmitDefaults};

#[derive(Debug, Clone, Args)]
pub struct SubmissionArgs {
    /// Image for submissions that name none. Without it, every submission must name its image.
    #[arg(
        long = "k8s-image",
        env = "SUBMISSION_HELPER_K8S_IMAGE",
        value_parser = named(or_none(image)),
        default_value = "",
        hide_default_value = true
    )]
    pub image: OrNone<String>,
    /// Image pull secret for submissions that name none; empty for none.
    #[arg(
        long = "k8s-registry-secret",
        env = "SUBMISSION_HELPER_K8S_REGISTRY_SECRET",
        value_parser = named(or_none(object_name)),
        default_value = seeds().registry_secret.unwrap_or_default()
    )]
    pub registry_secret: OrNone<String>,
    /// PersistentVolumeClaim for submissions that name none; empty for none.
    #[arg(
        long = "k8s-volume-claim",
        env = "SUBMISSION_HELPER_K8S_VOLUME_CLAIM",
        value_parser = named(or_none(object_name)),
        default_value = seeds().volume_claim.unwrap_or_default()
    )]
    pub volume_claim: OrNone<String>,
    /// Where the claim is mounted for submissions that name no mount path.
    #[arg(
        long = "k8s-mount-path",
        env = "SUBMISSION_HELPER_K8S_MOUNT_PATH",
        value_parser = named(mount_path),
        default_value = seeds().mount_path
    )]
    pub mount_path: String,
    /// Jobs of one user that may be active at once (pending or running); more submissions
    /// stay queued and are dispatched in submit order as these end. 0 for no limit. A token
    /// may set its own (`token create --max-concurrent`).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_MAX_CONCURRENT",
        value_parser = clap::value_parser!(i64).map(|limit| (limit > 0).then_some(limit)),
        default_value = dispatch::Limits::default().per_user.unwrap_or(0).to_string()
    )]
    pub max_concurrent: OrNone<i64>,
    /// Retries of a failed pod (`backoffLimit`) for submissions that name none.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_RETRIES",
        value_parser = named(retries),
        default_value_t = seeds().job.retries
    )]
    pub default_retries: i32,
    /// What a failed pod means by its exit code, for submissions that say nothing of it: a
    /// submission's `retry_policy` as JSON, such as
    /// `{"on_exit_codes": [{"codes": [2], "action": "fail"}]}`. Default: every failure counts.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_RETRY_POLICY",
        value_parser = named(retry_policy),
        default_value = "{}"
    )]
    pub default_retry_policy: RetryPolicy,
    /// Minutes a payload may run (`activeDeadlineSeconds` / 60) for submissions that name
    /// none; 0 for no limit.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_TIME",
        value_parser = named(minutes_or_unlimited),
        default_value = seeds().job.time_minutes.unwrap_or(0).to_string()
    )]
    pub default_time: OrNone<i64>,
    /// Memory requested for payloads that name neither a memory request nor a limit; empty
    /// for none.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_MEMORY",
        value_parser = named(quantity),
        default_value = seeds().job.memory.unwrap_or_default()
    )]
    pub default_memory: OrNone<String>,
    /// CPUs requested for payloads that name neither a CPU request nor a limit; empty for none.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_CPUS",
        value_parser = named(quantity),
        default_value = seeds().job.cpus.unwrap_or_default()
    )]
    pub default_cpus: OrNone<String>,
    /// Seconds after which Kubernetes deletes a finished Job and its pods (the service keeps
    /// their logs), for submissions that name none; empty for never.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_JOB_TTL_SECONDS",
        value_parser = named(seconds_or_never),
        default_value = seeds()
            .job
            .ttl_seconds_after_finished
            .map(|seconds| seconds.to_string())
            .unwrap_or_default()
    )]
    pub job_ttl_seconds: OrNone<i32>,
    /// When the kubelet pulls payload images.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_IMAGE_PULL_POLICY",
        value_enum,
        default_value_t = PodSettings::default().image_pull_policy
    )]
    pub image_pull_policy: ImagePullPolicy,
    /// Allow only images starting with this prefix (repeat for several; comma-separated in the
    /// environment). Default: any image.
    #[arg(
        long = "allowed-image-prefix",
        env = "SUBMISSION_HELPER_ALLOWED_IMAGE_PREFIXES",
        value_delimiter = ','
    )]
    pub allowed_image_prefixes: Vec<String>,
    /// Allow only these volume claims (repeat for several). Default: any.
    #[arg(
        long = "allowed-volume-claim",
        env = "SUBMISSION_HELPER_ALLOWED_VOLUME_CLAIMS",
        value_delimiter = ','
    )]
    pub allowed_volume_claims: Vec<String>,
    /// Allow only these image pull secrets (repeat for several). Default: any.
    #[arg(
        long = "allowed-registry-secret",
        env = "SUBMISSION_HELPER_ALLOWED_REGISTRY_SECRETS",
        value_delimiter = ','
    )]
    pub allowed_registry_secrets: Vec<String>,
    /// A host submissions' `notify_url` may name (repeat for several): with any, only these;
    /// a listed host may be private or loopback. Default: every public host, never a private,
    /// loopback or link-local address (checked again after DNS resolution when sending).
    #[arg(
        long = "allowed-notify-host",
        env = "SUBMISSION_HELPER_ALLOWED_NOTIFY_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_notify_hosts: Vec<String>,
    /// Run payload containers as this user id (and as non-root when it is not 0).
    #[arg(long, env = "SUBMISSION_HELPER_RUN_AS_USER")]
    pub run_as_user: Option<i64>,
    /// Run payload containers with this primary group id.
    #[arg(long, env = "SUBMISSION_HELPER_RUN_AS_GROUP")]
    pub run_as_group: Option<i64>,
}

/// What a submission gets when the server is started with no flags: the flags' defaults.
fn seeds() -> SubmitDefaults {
    SubmitDefaults::default()
}

impl SubmissionArgs {
    /// The defaults for submissions; a default image the allow list refuses stops the server at
    /// start instead of failing every submission.
    pub fn submit_defaults(&self) -> Result<SubmitDefaults, String> {
        let defaults = SubmitDefaults {
            image: self.image.clone(),
            registry_secret: self.registry_secret.clone(),
            volume_claim: self.volume_claim.clone(),
            mount_path: self.mount_path.clone(),
            job: JobDefaults {
                retries: self.default_retries,
                time_minutes: self.default_time,
                memory: self.default_memory.clone(),
                cpus: self.default_cpus.clone(),
                ttl_seconds_after_finished: self.job_ttl_seconds,
                retry_policy: self.default_retry_policy.clone(),
            },
            allowed: AllowLists {
                image_prefixes: self.allowed_image_prefixes.clone(),
                volume_claims: self.allowed_volume_claims.clone(),
                registry_secrets: self.allowed_registry_secrets.clone(),
                notify_hosts: self.allowed_notify_hosts.clone(),
            },
            kueue: None,
            clusters: seeds().clusters,
        };
        if let Some(image) = &defaults.image {
            defaults
                .allowed
                .check_image(image)
                .map_err(|reason| format!("--k8s-image {reason}"))?;
        }
        Ok(defaults)
    }

    pub fn pod_settings(&self) -> PodSettings {
        PodSettings {
            run_as_user: self.run_as_user,
            run_as_group: self.run_as_group,
            image_pull_policy: self.image_pull_policy,
        }
    }

    pub fn dispatch_limits(&self) -> dispatch::Limits {
        dispatch::Limits {
            per_user: self.max_concurrent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::testing::parse;
    use crate::domain::{ExitCodeAction, ExitCodeRule};

    fn args(extra: &[&str]) -> SubmissionArgs {
        parse(extra).expect("parses")
    }

    #[test]
    fn the_defaults_are_the_seeds() {
        let defaults = args(&[]).submit_defaults().expect("valid");

        assert_eq!(defaults, SubmitDefaults::default());
        assert_eq!(args(&[]).pod_settings(), PodSettings::default());
        assert_eq!(args(&[]).dispatch_limits().per_user, None);
    }

    #[test]
    fn empty_secret_and_claim_flags_mean_none() {
        let defaults = args(&["--k8s-registry-secret", "", "--k8s-volume-claim", ""])
            .submit_defaults()
            .expect("valid");

        assert_eq!(
            (defaults.registry_secret, defaults.volume_claim),
            (None, None)
        );
    }

    #[test]
    fn a_default_outside_the_allow_lists_is_refused_at_start() {
        let error = args(&[
            "--k8s-image",
            "docker.io/x",
            "--allowed-image-prefix",
            "registry.example.org/",
        ])
        .submit_defaults()
        .expect_err("invalid");

        assert!(error.starts_with("--k8s-image is not allowed"), "{error}");
    }

    #[test]
    fn job_defaults_can_be_changed_or_turned_off() {
        let defaults = args(&[
            "--default-retries",
            "0",
            "--default-time",
            "0",
            "--default-memory",
            "",
            "--default-cpus",
            "500m",
            "--job-ttl-seconds",
            "",
            "--default-retry-policy",
            r#"{"on_exit_codes": [{"codes": [2], "action": "fail"}]}"#,
        ])
        .submit_defaults()
        .expect("valid");

        assert_eq!(
            defaults.job,
            JobDefaults {
                retries: 0,
                time_minutes: None,
                memory: None,
                cpus: Some("500m".into()),
                ttl_seconds_after_finished: None,
                retry_policy: RetryPolicy {
                    on_exit_codes: vec![ExitCodeRule {
                        codes: vec![2],
                        action: ExitCodeAction::Fail,
                    }],
                    on_oom: None,
                },
            }
        );
    }

    #[test]
    fn a_user_limit_of_zero_is_no_limit() {
        assert_eq!(
            args(&["--max-concurrent", "0"]).dispatch_limits().per_user,
            None
        );
        assert_eq!(
            args(&["--max-concurrent", "4"]).dispatch_limits().per_user,
            Some(4)
        );
    }

    #[test]
    fn bad_job_defaults_are_refused_at_start() {
        for (flag, value) in [
            ("--default-retries", "101"),
            ("--default-time", "-1"),
            ("--default-memory", "lots"),
            ("--job-ttl-seconds", "soon"),
            (
                "--default-retry-policy",
                r#"{"on_exit_codes": [{"codes": [0]}]}"#,
            ),
            ("--default-retry-policy", "fail on 2"),
        ] {
            let error = parse::<SubmissionArgs>(&[&format!("{flag}={value}")]).expect_err(flag);
            assert!(error.starts_with(flag), "{error}");
        }
    }

    #[test]
    fn a_bad_flag_is_refused_at_start() {
        let error =
            parse::<SubmissionArgs>(&["--k8s-mount-path", "relative"]).expect_err("invalid");

        assert!(error.starts_with("--k8s-mount-path"), "{error}");
    }
}
