//! The server's options (`submission-helper serve`), each with an environment variable (for
//! containers). The rest of the command line is [`crate::cli`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::cluster::manifest::{ImagePullPolicy, PodSettings};
use crate::domain::{AllowLists, JobDefaults, MAX_BACKOFF_LIMIT, SubmitDefaults, kube_rules};

/// The database of `serve` and `token` when none is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://submission-helper.db";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// `sqlite://FILE` (created and migrated on start) or `postgres://...`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL
    )]
    pub database_url: String,
    /// Namespace for the Jobs. Default: the in-cluster namespace or the kubeconfig context's.
    #[arg(long, env = "SUBMISSION_HELPER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Image for submissions that name none. Without it, every submission must name its image.
    #[arg(long = "k8s-image", env = "SUBMISSION_HELPER_K8S_IMAGE")]
    pub image: Option<String>,
    /// Image pull secret for submissions that name none; empty for none.
    #[arg(
        long = "k8s-registry-secret",
        env = "SUBMISSION_HELPER_K8S_REGISTRY_SECRET",
        default_value = "sh-k8s-registry-secret"
    )]
    pub registry_secret: String,
    /// PersistentVolumeClaim for submissions that name none; empty for none.
    #[arg(
        long = "k8s-volume-claim",
        env = "SUBMISSION_HELPER_K8S_VOLUME_CLAIM",
        default_value = "ntuples-claim"
    )]
    pub volume_claim: String,
    /// Where the claim is mounted for submissions that name no mount path.
    #[arg(
        long = "k8s-mount-path",
        env = "SUBMISSION_HELPER_K8S_MOUNT_PATH",
        default_value = "/ntuples"
    )]
    pub mount_path: String,
    /// Jobs of one user that may be active at once (pending or running); more submissions
    /// stay queued and are dispatched in submit order as these end. 0 for no limit. A token
    /// may set its own (`token create --max-concurrent`).
    #[arg(long, env = "SUBMISSION_HELPER_MAX_CONCURRENT", default_value_t = 0)]
    pub max_concurrent: i64,
    /// Retries of a failed pod (`backoffLimit`) for submissions that name none.
    #[arg(long, env = "SUBMISSION_HELPER_DEFAULT_RETRIES", default_value_t = 3)]
    pub default_retries: i32,
    /// Minutes a payload may run (`activeDeadlineSeconds` / 60) for submissions that name
    /// none; 0 for no limit.
    #[arg(long, env = "SUBMISSION_HELPER_DEFAULT_TIME", default_value_t = 24 * 60)]
    pub default_time: i64,
    /// Memory requested for payloads that name neither a memory request nor a limit; empty
    /// for none.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DEFAULT_MEMORY",
        default_value = "4000M"
    )]
    pub default_memory: String,
    /// CPUs requested for payloads that name neither a CPU request nor a limit; empty for none.
    #[arg(long, env = "SUBMISSION_HELPER_DEFAULT_CPUS", default_value = "1")]
    pub default_cpus: String,
    /// Seconds after which Kubernetes deletes a finished Job and its pods (the service keeps
    /// their logs), for submissions that name none; empty for never.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_JOB_TTL_SECONDS",
        default_value = "86400"
    )]
    pub job_ttl_seconds: String,
    /// When the kubelet pulls payload images.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_IMAGE_PULL_POLICY",
        value_enum,
        default_value_t = ImagePullPolicy::Always
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
    /// Requests a minute each token may send (in bursts of up to a minute's worth); 0 for no limit.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_RATE_LIMIT_PER_MINUTE",
        default_value_t = 6000
    )]
    pub rate_limit_per_minute: u32,
    /// Serve `/metrics` without a token (for a scraper in a trusted network).
    #[arg(long, env = "SUBMISSION_HELPER_PUBLIC_METRICS")]
    pub public_metrics: bool,
    /// How long a log follow waits for a pod to start before giving up.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LOG_WAIT_SECONDS",
        default_value_t = 120
    )]
    pub log_wait_seconds: u64,
    /// Log follows each token user may keep open at once (past it: 429); 0 for no cap.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_FOLLOWS_PER_TOKEN_USER",
        default_value_t = 20
    )]
    pub follows_per_token_user: usize,
    /// How long a pod may be stuck before its start (an image that cannot be pulled, a missing
    /// secret, no node to run it) before its submission fails and its Job is deleted: `10m`,
    /// `90s`, `1h`.
    #[arg(long, env = "SUBMISSION_HELPER_PENDING_TIMEOUT", default_value = "10m")]
    pub pending_timeout: String,
    /// How long state changes are kept for event streams (`GET /v1/events`) to resume from:
    /// `7d`, `12h`. A stream asking for older ones is answered 410.
    #[arg(long, env = "SUBMISSION_HELPER_EVENT_RETENTION", default_value = "7d")]
    pub event_retention: String,
    /// How long one webhook notification may take before it counts as failed: `10s`.
    #[arg(long, env = "SUBMISSION_HELPER_NOTIFY_TIMEOUT", default_value = "10s")]
    pub notify_timeout: String,
    /// Attempts at a webhook notification before it is given up (and logged).
    #[arg(long, env = "SUBMISSION_HELPER_NOTIFY_ATTEMPTS", default_value_t = 10)]
    pub notify_attempts: u32,
    /// The wait after a notification's first failed attempt; it doubles after each further
    /// one, up to an hour: `5s`, `1m`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_NOTIFY_FIRST_RETRY",
        default_value = "5s"
    )]
    pub notify_first_retry: String,
    /// How long a request may take before it is answered 503 (log follows are exempt).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 30
    )]
    pub request_timeout_seconds: u64,
    /// A web origin whose pages may call the API from a browser (CORS), e.g.
    /// `https://dashboard.example.org` (repeat for several; comma-separated in the environment).
    /// Default: none, so only pages of the service's own origin may.
    #[arg(
        long = "cors-origin",
        env = "SUBMISSION_HELPER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// How the service writes its log: `text` for people, `json` (one object a line, with the
    /// request's span and its `request_id`) for log collectors.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// Sign-in with an OpenID Connect issuer (`--oidc-*`).
    #[command(flatten)]
    pub oidc: crate::http::oidc::OidcArgs,
}

/// What `--log-format` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeArgs {
    /// The defaults for submissions, checked with the rules a submission's own fields obey,
    /// so a bad flag stops the server at start instead of failing every submission.
    pub fn submit_defaults(&self) -> Result<SubmitDefaults, String> {
        let optional = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let defaults = SubmitDefaults {
            image: self.image.clone().filter(|image| !image.is_empty()),
            registry_secret: optional(&self.registry_secret),
            volume_claim: optional(&self.volume_claim),
            mount_path: self.mount_path.clone(),
            job: self.job_defaults()?,
            allowed: AllowLists {
                image_prefixes: self.allowed_image_prefixes.clone(),
                volume_claims: self.allowed_volume_claims.clone(),
                registry_secrets: self.allowed_registry_secrets.clone(),
                notify_hosts: self.allowed_notify_hosts.clone(),
            },
        };
        if let Some(image) = &defaults.image {
            kube_rules::image_reference(image)
                .and_then(|()| defaults.allowed.check_image(image))
                .map_err(|reason| format!("--k8s-image {reason}"))?;
        }
        if let Some(secret) = &defaults.registry_secret {
            kube_rules::dns1123_subdomain(secret)
                .map_err(|reason| format!("--k8s-registry-secret {reason}"))?;
        }
        if let Some(claim) = &defaults.volume_claim {
            kube_rules::dns1123_subdomain(claim)
                .map_err(|reason| format!("--k8s-volume-claim {reason}"))?;
        }
        kube_rules::mount_path(&defaults.mount_path)
            .map_err(|reason| format!("--k8s-mount-path {reason}"))?;
        if let Some(namespace) = &self.namespace {
            kube_rules::dns1123_label(namespace)
                .map_err(|reason| format!("--namespace {reason}"))?;
        }
        Ok(defaults)
    }

    fn job_defaults(&self) -> Result<JobDefaults, String> {
        let optional = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
        if !(0..=MAX_BACKOFF_LIMIT).contains(&i64::from(self.default_retries)) {
            return Err(format!(
                "--default-retries must be between 0 and {MAX_BACKOFF_LIMIT}"
            ));
        }
        if self.default_time < 0 {
            return Err("--default-time must be 0 (no limit) or a number of minutes".into());
        }
        let memory = optional(&self.default_memory);
        let cpus = optional(&self.default_cpus);
        for (flag, amount) in [("--default-memory", &memory), ("--default-cpus", &cpus)] {
            if let Some(amount) = amount {
                kube_rules::quantity(amount).map_err(|reason| format!("{flag} {reason}"))?;
            }
        }
        let ttl_seconds_after_finished = match optional(&self.job_ttl_seconds) {
            None => None,
            Some(seconds) => Some(
                seconds
                    .parse::<i32>()
                    .ok()
                    .filter(|seconds| *seconds >= 0)
                    .ok_or("--job-ttl-seconds must be a number of seconds, or empty for never")?,
            ),
        };
        Ok(JobDefaults {
            retries: self.default_retries,
            time_minutes: (self.default_time > 0).then_some(self.default_time),
            memory,
            cpus,
            ttl_seconds_after_finished,
        })
    }

    pub fn pod_settings(&self) -> PodSettings {
        PodSettings {
            run_as_user: self.run_as_user,
            run_as_group: self.run_as_group,
            image_pull_policy: self.image_pull_policy,
        }
    }

    pub fn pending_timeout(&self) -> anyhow::Result<Duration> {
        people_duration(&self.pending_timeout)
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--pending-timeout must be a duration such as 10m, 90s or 1h, not {:?}",
                    self.pending_timeout
                )
            })
    }

    pub fn event_retention(&self) -> anyhow::Result<Duration> {
        people_duration(&self.event_retention)
            .filter(|retention| !retention.is_zero())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--event-retention must be a duration such as 7d, 12h or 90m, not {:?}",
                    self.event_retention
                )
            })
    }

    /// The `--cors-origin` values, each checked to be an origin as browsers send it
    /// (`scheme://host[:port]`, no path), so a typo stops the server at start.
    /// How notifications are sent (the allowed hosts come with the submit defaults).
    pub fn webhook_settings(&self) -> anyhow::Result<crate::webhooks::Settings> {
        let duration = |flag: &str, text: &str| {
            people_duration(text)
                .filter(|duration| !duration.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!("{flag} must be a duration such as 10s or 1m, not {text:?}")
                })
        };
        if self.notify_attempts == 0 {
            anyhow::bail!("--notify-attempts must be at least 1");
        }
        Ok(crate::webhooks::Settings {
            timeout: duration("--notify-timeout", &self.notify_timeout)?,
            attempts: self.notify_attempts,
            first_retry: duration("--notify-first-retry", &self.notify_first_retry)?,
            ..crate::webhooks::Settings::default()
        })
    }

    pub fn cors_origins(&self) -> anyhow::Result<Vec<http::HeaderValue>> {
        self.cors_origins
            .iter()
            .map(|origin| {
                cors_origin(origin).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--cors-origin must be an origin such as https://dashboard.example.org \
                         (a scheme, a host and maybe a port; no path), not {origin:?}"
                    )
                })
            })
            .collect()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.max(1))
    }

    pub fn log_wait(&self) -> Duration {
        Duration::from_secs(self.log_wait_seconds)
    }
}

/// A duration as people write it (`90s`, `10m`, `1h30m`, `7d`), spaces around it allowed.
fn people_duration(text: &str) -> Option<Duration> {
    crate::duration::parse(text.trim()).ok()
}

/// `text` as the `Origin` header a browser would send for it, if it is one: a scheme, a host
/// and maybe a port, with no path, not even a trailing `/` (it would never match).
fn cors_origin(text: &str) -> Option<http::HeaderValue> {
    let uri: http::Uri = text.parse().ok()?;
    let origin = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some_and(|authority| {
            !authority.host().is_empty() && !authority.as_str().contains('@')
        })
        && uri.path_and_query().is_none_or(|path| path.as_str() == "/")
        && !text.ends_with('/');
    origin
        .then(|| http::HeaderValue::from_str(text).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn a_cors_origin_is_a_scheme_a_host_and_maybe_a_port() {
        for good in [
            "https://dashboard.example.org",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
        ] {
            let parsed = args(&["--cors-origin", good]).cors_origins();
            assert_eq!(
                parsed.expect(good),
                [http::HeaderValue::from_static(good)],
                "{good}"
            );
        }
        for bad in [
            "dashboard.example.org",
            "https://dashboard.example.org/",
            "https://dashboard.example.org/app",
            "ftp://dashboard.example.org",
            "https://user@dashboard.example.org",
            "*",
        ] {
            let error = args(&["--cors-origin", bad])
                .cors_origins()
                .expect_err(bad)
                .to_string();
            assert!(
                error.contains("--cors-origin") && error.contains(bad),
                "{error}"
            );
        }
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["submission-helper", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Serve(args) => *args,
            _ => panic!("expected serve"),
        }
    }

    #[test]
    fn the_defaults_are_the_seeds() {
        let defaults = args(&[]).submit_defaults().expect("valid");

        assert_eq!(defaults, SubmitDefaults::default());
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
            }
        );
    }

    #[test]
    fn bad_job_defaults_are_refused_at_start() {
        for (flag, value) in [
            ("--default-retries", "101"),
            ("--default-time", "-1"),
            ("--default-memory", "lots"),
            ("--job-ttl-seconds", "soon"),
        ] {
            let error = args(&[&format!("{flag}={value}")])
                .submit_defaults()
                .expect_err(flag);
            assert!(error.starts_with(flag), "{error}");
        }
    }

    #[test]
    fn durations_are_written_as_people_write_them() {
        assert_eq!(
            args(&[]).pending_timeout().expect("default"),
            Duration::from_secs(600)
        );
        assert_eq!(
            args(&["--event-retention", " 12h "])
                .event_retention()
                .expect("valid"),
            Duration::from_secs(12 * 3600)
        );
    }

    #[test]
    fn a_bad_flag_is_refused_at_start() {
        let error = args(&["--k8s-mount-path", "relative"])
            .submit_defaults()
            .expect_err("invalid");

        assert!(error.starts_with("--k8s-mount-path"), "{error}");
    }
}
