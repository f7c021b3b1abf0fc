//! Granting and withdrawing tokens with all their terms (rights, expiry, description), and
//! recording when each was last used. The `tokens` table and its lookups are in `tokens`.

use jiff::Timestamp;
use sqlx::AssertSqlSafe;

use super::error::Result;
use super::store::Store;
use super::token_row::{TOKEN_COLUMNS, Token, token_from_row};
use super::tokens::secret_hash;

/// A token to create: whom it acts as, what it may do, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub user: String,
    pub admin: bool,
    pub delegate: bool,
    /// Its own limit of its user's active Jobs (`None`: the server's).
    pub max_concurrent: Option<i64>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<Timestamp>,
    pub description: Option<String>,
}

impl Store {
    /// Creates a token and returns it with its secret, which is not stored.
    pub async fn create_token_with(&self, new: &NewToken) -> Result<(Token, String)> {
        let secret = format!(
            "sht_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let webhook_secret = format!(
            "whsec_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = Token {
            id: uuid::Uuid::now_v7().to_string(),
            user: new.user.clone(),
            admin: new.admin,
            delegate: new.delegate,
            created_at: Timestamp::now().to_string(),
            revoked_at: None,
            max_concurrent: new.max_concurrent,
            expires_at: new.expires_at.map(|at| at.to_string()),
            last_used_at: None,
            description: new.description.clone(),
        };
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "INSERT INTO tokens (id, user_name, secret_hash, admin, delegate, created_at, \
             max_concurrent, expires_at, description, webhook_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(token.id.clone())
        .bind(token.user.clone())
        .bind(secret_hash(&secret))
        .bind(i64::from(token.admin))
        .bind(i64::from(token.delegate))
        .bind(token.created_at.clone())
        .bind(token.max_concurrent)
        .bind(token.expires_at.clone())
        .bind(token.description.clone())
        .bind(webhook_secret)
        .execute(&self.pool)
        .await?;
        Ok((token, secret))
    }

    /// The tokens of one user, oldest first (revoked ones too).
    pub async fn tokens_of(&self, user: &str) -> Result<Vec<Token>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_name = $1 ORDER BY id"
        )))
        .bind(user.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The token with this id, revoked or not.
    pub async fn token(&self, id: &str) -> Result<Option<Token>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Records that the token was used at `at`. Callers write this at most about once a minute
    /// per token (see `http::auth`), so requests do not each cost a write.
    pub async fn record_token_use(&self, id: &str, at: Timestamp) -> Result<()> {
        let _turn = self.turn_to_write().await;
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at.to_string())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
