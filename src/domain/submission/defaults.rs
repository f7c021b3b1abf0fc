//! The server's side of a submission: what it fills in for fields a request leaves out, and
//! what it lets users name at all.

use super::queueing::KueueDefaults;
use super::retry_policy::RetryPolicy;

/// The name of the one cluster a service finds in its environment (kubeconfig, or the pod's
/// service account) when it is given no `--cluster`.
pub const DEFAULT_CLUSTER: &str = "default";

/// The server's defaults for what a request leaves out (the seed's `--k8s-*` options), and what
/// it allows users to name at all.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitDefaults {
    pub image: Option<String>,
    pub registry_secret: Option<String>,
    pub volume_claim: Option<String>,
    pub mount_path: String,
    pub job: JobDefaults,
    pub allowed: AllowLists,
    /// Whether Jobs are submitted through Kueue (`--kueue`), and how.
    pub kueue: Option<KueueDefaults>,
    /// The names of the clusters a submission may ask for (`--cluster`), in the server's
    /// order.
    pub clusters: Vec<String>,
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
            kueue: None,
            clusters: vec![DEFAULT_CLUSTER.into()],
        }
    }
}

/// What the helper's Kubernetes controller gave every Job, for submissions that do not say.
#[derive(Debug, Clone, PartialEq)]
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
    /// What a failed pod means by its exit code, for submissions that say nothing of it.
    pub retry_policy: RetryPolicy,
}

impl Default for JobDefaults {
    fn default() -> Self {
        JobDefaults {
            retries: 3,
            time_minutes: Some(24 * 60),
            memory: Some("4000M".into()),
            cpus: Some("1".into()),
            ttl_seconds_after_finished: Some(24 * 60 * 60),
            retry_policy: RetryPolicy::default(),
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
