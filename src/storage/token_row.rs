//! A row of the `tokens` table as the service reads it: the [`Token`] (everything but its
//! secrets), the columns it is read from, and how.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::Result;

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub user: String,
    pub admin: bool,
    pub delegate: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Its own limit of its user's active Jobs (`None`: the server's `--max-concurrent`).
    pub max_concurrent: Option<i64>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<String>,
    /// When it was last used, to about a minute.
    pub last_used_at: Option<String>,
    /// What it is for, as its creator said.
    pub description: Option<String>,
}

/// The columns [`token_from_row`] reads.
pub(super) const TOKEN_COLUMNS: &str = "id, user_name, admin, delegate, created_at, revoked_at, \
     max_concurrent, expires_at, last_used_at, description";

pub(super) fn token_from_row(row: &AnyRow) -> Result<Token> {
    let admin: i64 = row.try_get("admin")?;
    let delegate: i64 = row.try_get("delegate")?;
    Ok(Token {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        admin: admin != 0,
        delegate: delegate != 0,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        max_concurrent: row.try_get("max_concurrent")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        description: row.try_get("description")?,
    })
}
