//! The body of a submission request as the user sends it, and its schema in the OpenAPI
//! document. Nothing here is checked: [`super::parse`] turns it into a valid specification.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::resources::Resources;
use super::retry_policy::RetryPolicy;
use crate::domain::notify::NotifyScope;

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
    /// What a failed pod means by its exit code: fail the submission at once, retry without
    /// counting, or count against `retries`. Default: the server's (`--default-retry-policy`).
    /// A pod evicted or preempted never counts.
    pub retry_policy: Option<RetryPolicy>,
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
    pub notify: Option<NotifyScope>,
    /// The Kueue LocalQueue of the namespace the submission waits in, on a server that submits
    /// through Kueue (`--kueue`). Default: the server's (`--kueue-default-queue`).
    #[schema(example = "analysis", max_length = 253)]
    pub queue: Option<String>,
    /// The Kueue WorkloadPriorityClass of the submission, on a server that submits through
    /// Kueue. Default: the queue's.
    #[schema(example = "high", max_length = 253)]
    pub priority_class: Option<String>,
    /// The cluster to run in, by the name the server gives it (`--cluster NAME=...`); it waits
    /// for that cluster if it has no room or does not answer. Default: any with room, as the
    /// server's `--placement` chooses.
    #[schema(example = "onsite", max_length = 63)]
    pub cluster: Option<String>,
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
