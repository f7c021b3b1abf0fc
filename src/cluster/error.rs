//! What can go wrong talking to the API server, as the cluster side reports it.
//!
//! The whole text of an error (where the API server is, what the client library said, how the
//! service signs in) is for the log. Users read [`ClusterError::short_cause`]; of the API
//! server's own words, only its reason for refusing a Job reaches them (it names a field or a
//! quota, not a host).

/// What can go wrong talking to the cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// Why no client could be made (a kubeconfig's path, an environment variable).
    #[error("no cluster is configured: {0}")]
    NotConfigured(String),
    /// The API server answered with an error status.
    #[error("the API server answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer: the client library's error and its causes, or a time limit.
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
            ClusterError::Api { code: 404, .. } => "the API server has no such object",
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
            other => ClusterError::Unreachable(with_causes(&other)),
        }
    }
}

/// An error and its causes, which kube and hyper keep out of their own messages ("client
/// error (Connect)" says nothing of a refused connection or a certificate).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
