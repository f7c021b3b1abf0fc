//! What can go wrong talking to the API server, as the cluster side reports it.

/// What can go wrong talking to the cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("no cluster is configured: {0}")]
    NotConfigured(String),
    /// The API server answered with an error status.
    #[error("the API server answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("the API server could not be reached: {0}")]
    Unreachable(String),
}

impl ClusterError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::Api { code: 404, .. })
    }

    /// What is wrong in a few words, for anyone who asks (`/readyz` needs no token): never the
    /// API server's own text, which names hosts, users and resources; that goes to the log.
    pub fn short_cause(&self) -> &'static str {
        match self {
            ClusterError::NotConfigured(_) => "no cluster is configured",
            ClusterError::Unreachable(_) => "the API server could not be reached",
            ClusterError::Api {
                code: 401 | 403, ..
            } => "the API server refuses the service's credentials",
            ClusterError::Api { .. } => "the API server answers with errors",
        }
    }

    /// The API server refused this create for a reason that may pass (RBAC, a quota, an
    /// admission policy, a missing namespace): worth a few more tries, not for ever. Not an
    /// invalid object, a conflict, or the API server's own trouble (429, 5xx).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClusterError::Api { code, .. }
            if (400..500).contains(code) && !matches!(code, 400 | 409 | 422 | 429))
    }

    /// The API server refused the object itself; sending it again cannot succeed.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            ClusterError::Api {
                code: 400 | 422,
                ..
            }
        )
    }
}

impl From<kube::Error> for ClusterError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
