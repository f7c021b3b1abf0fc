//! Submissions: what a user asks to run, parsed once at the boundary into types that are valid
//! by construction, and the record the service keeps of each one.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::identity::Caller;
use super::kube_rules;
use super::notify;
use super::state::State;

/// Labels the service sets itself; users may not set or override them.
pub const APP_LABEL: &str = "app";
pub const APP_LABEL_VALUE: &str = "submission-helper";
pub const LABEL_PREFIX: &str = "submission-helper.io/";
pub const SUBMISSION_ID_LABEL: &str = "submission-helper.io/submission-id";
pub const NAME_LABEL: &str = "submission-helper.io/name";
pub const OWNER_LABEL: &str = "submission-helper.io/owner";

/// Size limits that keep one request from filling the database or the API server's etcd.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
pub const MAX_ENV_VARS: usize = 256;
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;
pub const MAX_USER_LABELS: usize = 32;
pub const MAX_BACKOFF_LIMIT: i64 = 100;
/// Ten years, in minutes: `time` beyond it is a mistake, not a plan.
pub const MAX_TIME_MINUTES: i64 = 10 * 365 * 24 * 60;

/// A submission's id: a UUIDv7, so ids sort by creation time and "newest first" is an index scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubmissionId(Uuid);

impl SubmissionId {
    pub fn new() -> Self {
        SubmissionId(Uuid::now_v7())
    }

    /// The name of the submission's Job: stable, so a second create of the same submission is
    /// refused by the API server (409) instead of running the payload twice.
    pub fn job_name(&self) -> String {
        format!("sh-{}", self.0.simple())
    }
}

impl Default for SubmissionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl std::str::FromStr for SubmissionId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text).map(SubmissionId)
    }
}

/// One field the user got wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where in the request, e.g. `env.1PATH` or `submissions[3].image`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// CPU and memory for the payload container, as Kubernetes quantities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Amounts::is_empty")]
    pub requests: Amounts,
    #[serde(default, skip_serializing_if = "Amounts::is_empty")]
    pub limits: Amounts,
}

/// An amount of CPU (`500m`, `2`) and memory (`512Mi`, `2Gi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "500m")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2Gi")]
    pub memory: Option<String>,
}

impl Amounts {
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }

    fn pairs(&self) -> [(&'static str, Option<&String>); 2] {
        [("cpu", self.cpu.as_ref()), ("memory", self.memory.as_ref())]
    }
}

/// A request to run one payload, as the user sends it.
///
/// Fields left out take the server's defaults (the `--k8s-*` flags); `registry_secret` and
/// `volume_claim` may be `null` to ask for no pull secret or no volume at all.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRequest {
    /// A short name to find the submission by; also set as the Job label `submission-helper.io/name`.
    #[schema(
        example = "ttbar-2018",
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
    )]
    pub name: Option<String>,
    /// The container image; required unless the server has a default image.
    #[schema(
        example = "gitlab-registry.cern.ch/fsauerbu/caf-k8s/cafexample",
        min_length = 1,
        max_length = 1024,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._/:@-]*$"
    )]
    pub image: Option<String>,
    /// Run as `bash -cl "<command>"` in the image, so the image's `.bashrc` sets up the environment.
    #[schema(
        required = true,
        example = "analyze config/master/analyze.cfg",
        min_length = 1,
        max_length = 65536,
        pattern = "\\S"
    )]
    pub command: Option<String>,
    /// Name of the image pull secret; `null` for none. Default: the server's (`sh-k8s-registry-secret`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 253, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    pub registry_secret: Option<Option<String>>,
    /// PersistentVolumeClaim with the input data; `null` for no volume. Default: the server's (`ntuples-claim`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 253, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    pub volume_claim: Option<Option<String>>,
    /// Where the claim is mounted in the container. Default: the server's (`/ntuples`).
    #[schema(max_length = 1024, pattern = "^/[^:]*[^/:][^:]*$")]
    pub mount_path: Option<String>,
    /// Environment variables for the payload.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra labels on the Job and its pods.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub resources: Option<Resources>,
    /// Retries of a failed pod before the Job fails (the Job's `backoffLimit`; `retries` says
    /// the same). Default: the server's (3).
    #[schema(minimum = 0, maximum = 100)]
    pub backoff_limit: Option<i64>,
    /// The Job fails once it has been active this long (`time` says it in minutes). Default:
    /// the server's (a day).
    #[schema(minimum = 1)]
    pub active_deadline_seconds: Option<i64>,
    /// Kubernetes deletes the finished Job (and its pods) this long after it ends; the service
    /// keeps the logs. Default: the server's (a day).
    #[schema(minimum = 0, maximum = 2147483647)]
    pub ttl_seconds_after_finished: Option<i64>,
    /// The task identifier (the helper's `--identifier`), set as the label `identifier` on the
    /// Job and its pods.
    #[schema(example = "ttbar-2018-mc16e", max_length = 63)]
    pub identifier: Option<String>,
    /// Minutes the payload may run (the helper's `--time`): the Job's `activeDeadlineSeconds`
    /// is 60 times this.
    #[schema(minimum = 1, maximum = 5256000, example = 1440)]
    pub time: Option<i64>,
    /// Memory requested for the payload (the helper's `--memory`), a Kubernetes quantity:
    /// the same as `resources.requests.memory`. Default: the server's (`4000M`).
    #[schema(example = "4000M")]
    pub memory: Option<String>,
    /// CPUs requested for the payload (the helper's `--cpus`), a number or a Kubernetes
    /// quantity (`1`, `0.5`, `500m`): the same as `resources.requests.cpu`. Default: the
    /// server's (1).
    #[schema(value_type = Option<String>, example = "1")]
    pub cpus: Option<Cpus>,
    /// Retries of a failed pod (the helper's `--retries`): the same as `backoff_limit`.
    #[schema(minimum = 0, maximum = 100)]
    pub retries: Option<i64>,
    /// The name of the payload's container (`kubectl logs POD -c TOOL`). Default: the command's
    /// program (`analyze` for `analyze.py config.cfg`), or `payload` when it has none.
    #[schema(example = "analyze", max_length = 63)]
    pub tool: Option<String>,
    /// Submissions that must succeed before this one runs: their ids, or, in a batch, the
    /// names of other submissions of the batch. Until then it is `waiting`; if one fails or
    /// is cancelled, this one fails (or is cancelled with it), saying which.
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub depends_on: Vec<String>,
    /// Where each change of the submission's state is POSTed, signed with the token's webhook
    /// secret (see the README's "Webhooks"): an absolute `http` or `https` URL without a user
    /// name or password, on a host the server sends to.
    #[schema(
        example = "https://portal.example.org/hooks/submissions",
        max_length = 2048
    )]
    pub notify_url: Option<String>,
    /// Which changes `notify_url` is sent: `all` (the default) or only the `final` one.
    pub notify: Option<super::NotifyScope>,
}

/// A CPU amount as a JSON number (`1`, `0.5`) or a Kubernetes quantity (`"500m"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cpus(pub String);

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Text(String),
            Number(serde_json::Number),
        }
        Ok(Cpus(match Given::deserialize(deserializer)? {
            Given::Text(text) => text,
            Given::Number(number) => number.to_string(),
        }))
    }
}

/// Keeps "absent" (outer `None`) apart from "explicitly null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The server's defaults for what a request leaves out (the seed's `--k8s-*` options), and what
/// it allows users to name at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitDefaults {
    pub image: Option<String>,
    pub registry_secret: Option<String>,
    pub volume_claim: Option<String>,
    pub mount_path: String,
    pub job: JobDefaults,
    pub allowed: AllowLists,
}

/// What the helper's Kubernetes controller gave every Job, for submissions that do not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefaults {
    /// `backoffLimit`.
    pub retries: i32,
    /// `activeDeadlineSeconds` is 60 times this; `None` for no deadline.
    pub time_minutes: Option<i64>,
    /// Requests of a payload that names neither a request nor a limit of that resource.
    pub memory: Option<String>,
    pub cpus: Option<String>,
    /// `ttlSecondsAfterFinished`; `None` to keep finished Jobs until someone deletes them.
    pub ttl_seconds_after_finished: Option<i32>,
}

impl Default for JobDefaults {
    fn default() -> Self {
        JobDefaults {
            retries: 3,
            time_minutes: Some(24 * 60),
            memory: Some("4000M".into()),
            cpus: Some("1".into()),
            ttl_seconds_after_finished: Some(24 * 60 * 60),
        }
    }
}

/// What users may name; an empty list allows anything valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowLists {
    /// Image references must start with one of these (e.g. `gitlab-registry.cern.ch/atlas/`).
    pub image_prefixes: Vec<String>,
    pub volume_claims: Vec<String>,
    pub registry_secrets: Vec<String>,
    /// Hosts `notify_url` may name (`--allowed-notify-host`); empty: every public host. A listed
    /// host may be private or loopback.
    pub notify_hosts: Vec<String>,
}

impl AllowLists {
    /// Why `image` may not be used here, if it may not.
    pub fn check_image(&self, image: &str) -> Result<(), String> {
        if self.image_prefixes.is_empty()
            || self
                .image_prefixes
                .iter()
                .any(|prefix| image.starts_with(prefix.as_str()))
        {
            Ok(())
        } else {
            Err(format!(
                "is not allowed on this server: images must start with one of {}",
                self.image_prefixes.join(", ")
            ))
        }
    }

    pub fn check_volume_claim(&self, claim: &str) -> Result<(), String> {
        check_listed(&self.volume_claims, claim)
    }

    pub fn check_registry_secret(&self, secret: &str) -> Result<(), String> {
        check_listed(&self.registry_secrets, secret)
    }
}

fn check_listed(allowed: &[String], name: &str) -> Result<(), String> {
    if allowed.is_empty() || allowed.iter().any(|listed| listed == name) {
        Ok(())
    } else {
        Err(format!(
            "is not allowed on this server; allowed: {}",
            allowed.join(", ")
        ))
    }
}

impl Default for SubmitDefaults {
    fn default() -> Self {
        SubmitDefaults {
            image: None,
            registry_secret: Some("sh-k8s-registry-secret".into()),
            volume_claim: Some("ntuples-claim".into()),
            mount_path: "/ntuples".into(),
            job: JobDefaults::default(),
            allowed: AllowLists::default(),
        }
    }
}

/// A volume claim and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub claim: String,
    pub mount_path: String,
}

/// What to run, complete and valid: every default resolved at submit time, so a later change of
/// the server's flags never changes a stored submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionSpec {
    pub name: Option<String>,
    pub image: String,
    pub command: String,
    pub registry_secret: Option<String>,
    pub volume: Option<Volume>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub resources: Resources,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    /// The payload container's name (submissions stored before it was chosen: `payload`).
    #[serde(default = "default_tool")]
    pub tool: String,
    /// The submissions that must succeed before this one runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<SubmissionId>,
    /// Where its state changes are sent, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<super::Notify>,
}

/// The container name when the command names no program to call it after.
pub const DEFAULT_TOOL: &str = "payload";

fn default_tool() -> String {
    DEFAULT_TOOL.into()
}

/// Words that start a command without naming its program (shell syntax and builtins).
const NOT_A_TOOL: [&str; 14] = [
    "source", ".", "cd", "export", "set", "exec", "env", "time", "if", "for", "while", "bash",
    "sh", "eval",
];

/// The container name a command suggests: its program's file name without directory or
/// extension (`./bin/analyze.py cfg` → `analyze`), when that is a valid container name.
pub fn tool_of(command: &str) -> String {
    let Some(first) = command.split_whitespace().next() else {
        return default_tool();
    };
    let file = first.rsplit('/').next().unwrap_or(first);
    let stem = match file.split_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    let name = stem.to_ascii_lowercase().replace('_', "-");
    if NOT_A_TOOL.contains(&file) || kube_rules::dns1123_label(&name).is_err() {
        default_tool()
    } else {
        name
    }
}

/// The label the helper's `--identifier` becomes.
pub const IDENTIFIER_LABEL: &str = "identifier";

impl SubmissionSpec {
    /// Parses a request, collecting every field error at once.
    pub fn parse(
        request: SubmissionRequest,
        defaults: &SubmitDefaults,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &str, result: Result<(), String>| {
            if let Err(reason) = result {
                errors.push(FieldError::new(field, reason));
            }
        };

        if let Some(name) = &request.name {
            check(
                "name",
                if name.is_empty() {
                    Err("must not be empty".into())
                } else {
                    kube_rules::label_value(name)
                },
            );
        }

        let image = request.image.or_else(|| defaults.image.clone());
        match &image {
            Some(image) => check(
                "image",
                kube_rules::image_reference(image)
                    .and_then(|()| defaults.allowed.check_image(image)),
            ),
            None => check(
                "image",
                Err("is required: this server has no default image".into()),
            ),
        }

        match &request.command {
            None => check("command", Err("is required".into())),
            Some(command) if command.trim().is_empty() => {
                check("command", Err("must not be empty".into()))
            }
            Some(command) if command.len() > MAX_COMMAND_BYTES => check(
                "command",
                Err(format!("must be at most {MAX_COMMAND_BYTES} bytes")),
            ),
            Some(command) if command.contains('\0') => {
                check("command", Err("must not contain NUL characters".into()))
            }
            Some(_) => {}
        }

        let registry_secret = request
            .registry_secret
            .unwrap_or_else(|| defaults.registry_secret.clone());
        if let Some(secret) = &registry_secret {
            check(
                "registry_secret",
                kube_rules::dns1123_subdomain(secret)
                    .and_then(|()| defaults.allowed.check_registry_secret(secret)),
            );
        }

        let volume_claim = request
            .volume_claim
            .unwrap_or_else(|| defaults.volume_claim.clone());
        let mount_path = request
            .mount_path
            .clone()
            .unwrap_or_else(|| defaults.mount_path.clone());
        if let Some(claim) = &volume_claim {
            check(
                "volume_claim",
                kube_rules::dns1123_subdomain(claim)
                    .and_then(|()| defaults.allowed.check_volume_claim(claim)),
            );
            check("mount_path", kube_rules::mount_path(&mount_path));
        } else if request.mount_path.is_some() {
            check(
                "mount_path",
                Err("has no effect when volume_claim is null".into()),
            );
        }

        if request.env.len() > MAX_ENV_VARS {
            check(
                "env",
                Err(format!("must have at most {MAX_ENV_VARS} variables")),
            );
        }
        for (key, value) in &request.env {
            check(&format!("env.{key}"), kube_rules::env_var_name(key));
            if value.len() > MAX_ENV_VALUE_BYTES {
                check(
                    &format!("env.{key}"),
                    Err(format!("value must be at most {MAX_ENV_VALUE_BYTES} bytes")),
                );
            }
        }

        let mut labels = request.labels;
        if let Some(identifier) = &request.identifier {
            match labels.get(IDENTIFIER_LABEL) {
                Some(label) if label != identifier => check(
                    "identifier",
                    Err(format!(
                        "conflicts with labels.{IDENTIFIER_LABEL}; give one of them"
                    )),
                ),
                _ => match kube_rules::label_value(identifier) {
                    Ok(()) => {
                        labels.insert(IDENTIFIER_LABEL.into(), identifier.clone());
                    }
                    Err(reason) => check("identifier", Err(reason)),
                },
            }
        }
        if labels.len() > MAX_USER_LABELS {
            check(
                "labels",
                Err(format!("must have at most {MAX_USER_LABELS} labels")),
            );
        }
        for (key, value) in &labels {
            let field = format!("labels.{key}");
            if key == APP_LABEL || key.starts_with(LABEL_PREFIX) {
                check(
                    &field,
                    Err("is set by the service and cannot be chosen".into()),
                );
                continue;
            }
            check(&field, kube_rules::label_key(key));
            check(&field, kube_rules::label_value(value));
        }

        let mut resources = request.resources.unwrap_or_default();
        for (field, given, requested) in [
            ("memory", request.memory, &mut resources.requests.memory),
            (
                "cpus",
                request.cpus.map(|Cpus(cpus)| cpus),
                &mut resources.requests.cpu,
            ),
        ] {
            let Some(given) = given else { continue };
            match requested {
                Some(other) if *other != given => check(
                    field,
                    Err(format!(
                        "conflicts with resources.requests.{}; give one of them",
                        if field == "cpus" { "cpu" } else { field }
                    )),
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
                    Err(reason) => check(&format!("resources.{kind}.{resource}"), Err(reason)),
                }
            }
        }
        for resource in ["cpu", "memory"] {
            if let (Some(request), Some(limit)) = (
                parsed.get(&("requests", resource)),
                parsed.get(&("limits", resource)),
            ) && request > limit
            {
                check(
                    &format!("resources.requests.{resource}"),
                    Err(format!("must not exceed resources.limits.{resource}")),
                );
            }
        }
        // The server's requests apply where the payload names neither a request nor a limit
        // (given only a limit, Kubernetes requests as much as the limit).
        let defaults_job = &defaults.job;
        if resources.requests.memory.is_none() && resources.limits.memory.is_none() {
            resources.requests.memory = defaults_job.memory.clone();
        }
        if resources.requests.cpu.is_none() && resources.limits.cpu.is_none() {
            resources.requests.cpu = defaults_job.cpus.clone();
        }

        let backoff_limit = match (request.retries, request.backoff_limit) {
            (Some(retries), Some(limit)) if retries != limit => {
                check(
                    "retries",
                    Err("conflicts with backoff_limit; give one of them".into()),
                );
                limit
            }
            (Some(given), _) | (None, Some(given)) => {
                let field = if request.retries.is_some() {
                    "retries"
                } else {
                    "backoff_limit"
                };
                if !(0..=MAX_BACKOFF_LIMIT).contains(&given) {
                    check(
                        field,
                        Err(format!("must be between 0 and {MAX_BACKOFF_LIMIT}")),
                    );
                }
                given
            }
            (None, None) => i64::from(defaults_job.retries),
        };
        if let Some(seconds) = request.active_deadline_seconds
            && seconds < 1
        {
            check("active_deadline_seconds", Err("must be at least 1".into()));
        }
        let active_deadline_seconds = match (request.time, request.active_deadline_seconds) {
            (Some(_), Some(_)) => {
                check(
                    "time",
                    Err("conflicts with active_deadline_seconds; give one of them".into()),
                );
                None
            }
            (Some(minutes), None) if !(1..=MAX_TIME_MINUTES).contains(&minutes) => {
                check(
                    "time",
                    Err(format!("must be between 1 and {MAX_TIME_MINUTES} minutes")),
                );
                None
            }
            (Some(minutes), None) => Some(minutes * 60),
            (None, Some(seconds)) => Some(seconds),
            (None, None) => defaults_job.time_minutes.map(|minutes| minutes * 60),
        };
        if let Some(seconds) = request.ttl_seconds_after_finished
            && !(0..=i64::from(i32::MAX)).contains(&seconds)
        {
            check(
                "ttl_seconds_after_finished",
                Err(format!("must be between 0 and {}", i32::MAX)),
            );
        }
        let tool = match request.tool {
            Some(tool) => {
                check("tool", kube_rules::dns1123_label(&tool));
                tool
            }
            None => request
                .command
                .as_deref()
                .map(tool_of)
                .unwrap_or_else(default_tool),
        };

        let notify = match (request.notify_url, request.notify) {
            (Some(url), scope) => {
                match notify::parse_notify_url(&url, &defaults.allowed.notify_hosts) {
                    Ok(url) => Some(super::Notify {
                        url: url.to_string(),
                        scope: scope.unwrap_or_default(),
                    }),
                    Err(reason) => {
                        check("notify_url", Err(reason));
                        None
                    }
                }
            }
            (None, Some(_)) => {
                check("notify", Err("needs a notify_url to send to".into()));
                None
            }
            (None, None) => None,
        };

        let (Some(image), Some(command), true) = (image, request.command, errors.is_empty()) else {
            return Err(errors);
        };
        Ok(SubmissionSpec {
            name: request.name,
            image,
            command,
            registry_secret,
            volume: volume_claim.map(|claim| Volume { claim, mount_path }),
            env: request.env,
            labels,
            resources,
            // Range-checked above.
            backoff_limit: i32::try_from(backoff_limit).unwrap_or_default(),
            active_deadline_seconds,
            ttl_seconds_after_finished: match request.ttl_seconds_after_finished {
                Some(seconds) => i32::try_from(seconds).ok(),
                None => defaults_job.ttl_seconds_after_finished,
            },
            tool,
            depends_on: Vec::new(),
            notify,
        })
    }
}

/// What the service knows of a submission's progress, kept current from the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub state: State,
    /// Why it is in that state, when there is more to say (a failure reason, a refused create).
    pub message: Option<String>,
    pub active: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl Progress {
    pub fn queued() -> Self {
        Progress {
            state: State::Queued,
            message: None,
            active: 0,
            succeeded: 0,
            failed: 0,
            started_at: None,
            finished_at: None,
        }
    }
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub id: SubmissionId,
    pub spec: SubmissionSpec,
    /// The user it belongs to.
    pub owner: String,
    /// The token user who sent it: the owner, or a delegate acting for them.
    pub submitted_by: String,
    pub namespace: String,
    pub job_name: String,
    pub created_at: Timestamp,
    pub progress: Progress,
    /// How many Jobs may be active at once that it counts against.
    pub limits: WorkLimits,
    /// The token whose webhook secret signs its notifications (set when it has a `notify`).
    pub notify_token: Option<String>,
}

/// The limits a submission's dispatch obeys: its user's (as the token it was sent with set
/// it), and its batch group's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkLimits {
    /// `None`: the server's `--max-concurrent`.
    pub user: Option<i64>,
    /// The batch it was sent in and that batch's `max_concurrent`.
    pub group: Option<(String, i64)>,
}

impl Submission {
    /// A new submission of `caller`'s, not yet stored, to run in `namespace`.
    pub fn new(spec: SubmissionSpec, namespace: &str, caller: &Caller) -> Self {
        let id = SubmissionId::new();
        Submission {
            id,
            owner: caller.user.clone(),
            submitted_by: caller.submitted_by.clone(),
            job_name: id.job_name(),
            namespace: namespace.to_owned(),
            created_at: Timestamp::now(),
            progress: Progress::queued(),
            limits: WorkLimits {
                user: caller.max_concurrent,
                group: None,
            },
            notify_token: spec.notify.as_ref().and(caller.token.clone()),
            spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_container_is_named_after_the_program_the_command_runs() {
        for (command, tool) in [
            ("analyze.py config/master/analyze.cfg", "analyze"),
            ("./bin/make_plots --all", "make-plots"),
            ("source setup.sh && analyze", "payload"),
            ("for f in *; do echo $f; done", "payload"),
            ("ÄÖ", "payload"),
            ("echo hello", "echo"),
        ] {
            assert_eq!(tool_of(command), tool, "{command}");
        }
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

    #[test]
    fn job_names_derive_from_the_id_alone_and_are_valid_dns_labels() {
        let id: SubmissionId = "01935f2e-8c4a-7b3d-9e2f-123456789abc".parse().expect("id");
        let reread: SubmissionId = id.to_string().parse().expect("id");

        assert_eq!(id.job_name(), "sh-01935f2e8c4a7b3d9e2f123456789abc");
        assert_eq!(
            reread.job_name(),
            id.job_name(),
            "a restart names the same Job"
        );
        assert_ne!(SubmissionId::new().job_name(), id.job_name());
        assert!(kube_rules::dns1123_label(&id.job_name()).is_ok());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let first = SubmissionId::new();
        let second = SubmissionId::new();

        assert!(first.to_string() < second.to_string());
    }
}
