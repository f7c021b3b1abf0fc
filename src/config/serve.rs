//! `submission-helper serve`'s options: where it listens, its database and namespace, the
//! limits and time limits of requests, and the groups of options in the files beside this one.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser;

use super::clusters::ClusterArgs;
use super::kueue::KueueArgs;
use super::notify::NotifyArgs;
use super::oidc::OidcArgs;
use super::submissions::SubmissionArgs;
use super::values::{cors_origin, named, namespace, positive_duration};
use crate::domain::SubmitDefaults;
use crate::duration;
use crate::startup::Settings;

/// The database of `serve` and `token` when none is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://submission-helper.db";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LISTEN",
        default_value_t = Settings::default().listen
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
    #[arg(
        long,
        env = "SUBMISSION_HELPER_NAMESPACE",
        value_parser = named(namespace)
    )]
    pub namespace: Option<String>,
    /// The clusters Jobs are created in, and how each submission's is chosen.
    #[command(flatten)]
    pub clusters: ClusterArgs,
    /// What submissions get: defaults, allow lists, pods, limits.
    #[command(flatten)]
    pub submissions: SubmissionArgs,
    /// Whether and how Jobs are submitted through Kueue.
    #[command(flatten)]
    pub kueue: KueueArgs,
    /// Requests a minute each token may send (in bursts of up to a minute's worth); 0 for no limit.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_RATE_LIMIT_PER_MINUTE",
        default_value_t = Settings::default().rate_limit_per_minute
    )]
    pub rate_limit_per_minute: u32,
    /// Serve `/metrics` without a token (for a scraper in a trusted network).
    #[arg(long, env = "SUBMISSION_HELPER_PUBLIC_METRICS")]
    pub public_metrics: bool,
    /// How long a log follow waits for a pod to start before giving up.
    #[arg(
        long = "log-wait-seconds",
        env = "SUBMISSION_HELPER_LOG_WAIT_SECONDS",
        value_name = "LOG_WAIT_SECONDS",
        value_parser = clap::value_parser!(u64).map(Duration::from_secs),
        default_value = Settings::default().log_wait.as_secs().to_string()
    )]
    pub log_wait: Duration,
    /// Log follows each token user may keep open at once (past it: 429); 0 for no cap.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_FOLLOWS_PER_TOKEN_USER",
        default_value_t = Settings::default().follows_per_user
    )]
    pub follows_per_token_user: usize,
    /// How long a pod may be stuck before its start (an image that cannot be pulled, a missing
    /// secret, no node to run it) before its submission fails and its Job is deleted: `10m`,
    /// `90s`, `1h`.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_PENDING_TIMEOUT",
        value_parser = named(positive_duration("10m, 90s or 1h")),
        default_value = duration::format(Settings::default().pending_timeout)
    )]
    pub pending_timeout: Duration,
    /// How long the cluster's watches may fail before it counts as unreachable: its live
    /// submissions keep their state and say since when it has not answered, and
    /// `cluster_reachable` is 0 (`60s`, `5m`).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_CLUSTER_UNREACHABLE_AFTER",
        value_parser = named(positive_duration("60s or 5m")),
        default_value = duration::format(Settings::default().cluster_unreachable_after)
    )]
    pub cluster_unreachable_after: Duration,
    /// How long a cluster may not answer before its live submissions (those not pinned to it)
    /// are run again in another cluster that answers; their Jobs there are deleted once it
    /// answers again (`15m`, `1h`).
    #[arg(
        long,
        env = "SUBMISSION_HELPER_CLUSTER_LOST_AFTER",
        value_parser = named(positive_duration("15m or 1h")),
        default_value = duration::format(Settings::default().cluster_lost_after)
    )]
    pub cluster_lost_after: Duration,
    /// How long state changes are kept for event streams (`GET /v1/events`) to resume from:
    /// `7d`, `12h`. A stream asking for older ones is answered 410.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_EVENT_RETENTION",
        value_parser = named(positive_duration("7d, 12h or 90m")),
        default_value = duration::format(Settings::default().event_retention)
    )]
    pub event_retention: Duration,
    /// How webhook notifications are sent (`--notify-*`).
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// How long a request may take before it is answered 503 (log follows are exempt).
    #[arg(
        long = "request-timeout-seconds",
        env = "SUBMISSION_HELPER_REQUEST_TIMEOUT_SECONDS",
        value_name = "REQUEST_TIMEOUT_SECONDS",
        value_parser = clap::value_parser!(u64).map(|seconds| Duration::from_secs(seconds.max(1))),
        default_value = Settings::default().request_timeout.as_secs().to_string()
    )]
    pub request_timeout: Duration,
    /// A web origin whose pages may call the API from a browser (CORS), e.g.
    /// `https://dashboard.example.org` (repeat for several; comma-separated in the environment).
    /// Default: none, so only pages of the service's own origin may.
    #[arg(
        long = "cors-origin",
        env = "SUBMISSION_HELPER_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = named(cors_origin)
    )]
    pub cors_origins: Vec<http::HeaderValue>,
    /// How the service writes its log: `text` for people, `json` (one object a line, with the
    /// request's span and its `request_id`) for log collectors.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// Write a line for each answered request at `info` (method, route, status, latency,
    /// request id, user); `--log-requests=false` for none.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_LOG_REQUESTS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = Settings::default().log_requests,
        action = clap::ArgAction::Set
    )]
    pub log_requests: bool,
    /// Sign-in with an OpenID Connect issuer (`--oidc-*`).
    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// What `--log-format` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeArgs {
    /// What the application is built with. Each flag was checked as it was read; what is left
    /// are the checks of flags together, which stop the server at start.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let clusters = self.clusters.names();
        Ok(Settings {
            listen: self.listen,
            placement: self.clusters.placement,
            cluster_capacity: self
                .clusters
                .capacities(&clusters)
                .map_err(anyhow::Error::msg)?,
            defaults: SubmitDefaults {
                kueue: self.kueue.defaults(),
                clusters,
                ..self
                    .submissions
                    .submit_defaults()
                    .map_err(anyhow::Error::msg)?
            },
            kueue: self.kueue.settings(),
            pods: self.submissions.pod_settings(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            public_metrics: self.public_metrics,
            log_wait: self.log_wait,
            request_timeout: self.request_timeout,
            follows_per_user: self.follows_per_token_user,
            pending_timeout: self.pending_timeout,
            cluster_unreachable_after: self.cluster_unreachable_after,
            cluster_lost_after: self.cluster_lost_after,
            dispatch: self.submissions.dispatch_limits(),
            cors_origins: self.cors_origins.clone(),
            event_retention: self.event_retention,
            webhooks: self.notify.webhook_settings(),
            log_requests: self.log_requests,
            oidc: self.oidc.settings()?,
            ..Settings::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::testing::parse;

    fn args(extra: &[&str]) -> ServeArgs {
        parse(extra).expect("parses")
    }

    #[test]
    fn a_serve_with_no_flags_runs_with_the_settings_defaults() {
        let settings = args(&[]).settings().expect("valid");
        let defaults = Settings::default();

        assert_eq!(settings.listen, defaults.listen);
        assert_eq!(settings.pending_timeout, Duration::from_secs(600));
        assert_eq!(
            (
                settings.pending_timeout,
                settings.event_retention,
                settings.log_wait,
                settings.request_timeout,
            ),
            (
                defaults.pending_timeout,
                defaults.event_retention,
                defaults.log_wait,
                defaults.request_timeout,
            )
        );
        assert_eq!(
            (settings.rate_limit_per_minute, settings.follows_per_user),
            (defaults.rate_limit_per_minute, defaults.follows_per_user)
        );
        assert_eq!(
            (
                settings.webhooks.timeout,
                settings.webhooks.attempts,
                settings.webhooks.first_retry,
            ),
            (
                defaults.webhooks.timeout,
                defaults.webhooks.attempts,
                defaults.webhooks.first_retry,
            )
        );
        assert!(settings.cors_origins.is_empty() && settings.oidc.is_none());
    }

    #[test]
    fn durations_are_written_as_people_write_them() {
        let settings = args(&["--pending-timeout", "1h30m", "--event-retention", "12h"]);

        assert_eq!(settings.pending_timeout, Duration::from_secs(5400));
        assert_eq!(settings.event_retention, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn a_cors_origin_is_a_scheme_a_host_and_maybe_a_port() {
        for good in [
            "https://dashboard.example.org",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
        ] {
            let parsed = parse::<ServeArgs>(&["--cors-origin", good]).map(|args| args.cors_origins);
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
            let error = parse::<ServeArgs>(&["--cors-origin", bad]).expect_err(bad);
            assert!(
                error.contains("--cors-origin") && error.contains(bad),
                "{error}"
            );
        }
    }

    #[test]
    fn requests_are_logged_unless_turned_off() {
        let on = |extra: &[&str]| args(extra).settings().expect("valid").log_requests;

        assert!(on(&[]));
        assert!(on(&["--log-requests"]));
        assert!(on(&["--log-requests=true"]));
        assert!(!on(&["--log-requests=false"]));
    }

    #[test]
    fn a_bad_namespace_is_refused_at_start() {
        let error = parse::<ServeArgs>(&["--namespace", "Not_A_Label"]).expect_err("invalid");

        assert!(error.starts_with("--namespace"), "{error}");
    }
}
