//! The one error type of storage, and whether a failure is worth retrying.

use crate::domain::SubmissionId;

/// What can go wrong in storage. Never shown to clients as is: the HTTP layer logs it and
/// answers with a generic 500.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("submission {0} kept changing under concurrent updates")]
    Contended(SubmissionId),
    #[error("the request was abandoned before its submissions were stored")]
    Abandoned,
}

impl StorageError {
    /// Whether the database could not be reached or had no free connection in time (it is
    /// down, or overloaded): worth retrying shortly, unlike a statement that failed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}

pub(super) type Result<T, E = StorageError> = std::result::Result<T, E>;
