//! The client's errors, and how they read on a terminal: a problem document the server sent
//! prints its `detail` and every `field: reason`, never JSON.

use reqwest::StatusCode;
use serde::Deserialize;

use super::args::TOKEN_VARIABLE;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command line or a file the user gave cannot be used as it is.
    #[error("{0}")]
    Usage(String),
    #[error("could not reach the server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server refused the request with a problem document.
    #[error("{0}")]
    Refused(Problem),
    /// The server (or something in front of it) answered with something that is not a problem.
    #[error("the server at {server} answered {status}{snippet}")]
    Unexpected {
        server: String,
        status: StatusCode,
        snippet: String,
    },
    /// A success whose body is not what this client expects.
    #[error("the server's answer cannot be read: {0}")]
    Unreadable(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// An RFC 9457 problem document, as the server sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Problem {
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldReason>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FieldReason {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    /// The detail, then one indented `field: reason` line per refused field.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headline = [&self.detail, &self.title]
            .into_iter()
            .find(|text| !text.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("the server refused the request ({})", self.status));
        f.write_str(&headline)?;
        for error in &self.errors {
            write!(f, "\n  {}: {}", error.field, error.reason)?;
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            write!(
                f,
                "\n  (give a token with --token or {}, or save one with `submission-helper login`)",
                TOKEN_VARIABLE
            )?;
        }
        Ok(())
    }
}
