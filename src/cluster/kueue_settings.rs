//! How the service submits through Kueue (`--kueue` and the flags beside it).

/// Jobs of ours waiting suspended in the cluster at once, by default.
pub const DEFAULT_MAX_SUSPENDED: u32 = 1000;

/// How the service submits through Kueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KueueSettings {
    /// At most this many of our Jobs wait suspended (not yet admitted) at once; the rest stay
    /// `queued` in the database, in submit order, so a huge campaign does not flood etcd.
    pub max_suspended: u32,
    /// Where Kueue's visibility API answers, if not through the API server's aggregation
    /// (`https://127.0.0.1:8082`): a queue's pending workloads and their positions.
    pub visibility_url: Option<http::Uri>,
}

impl Default for KueueSettings {
    fn default() -> Self {
        KueueSettings {
            max_suspended: DEFAULT_MAX_SUSPENDED,
            visibility_url: None,
        }
    }
}
