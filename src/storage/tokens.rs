//! The `tokens` table: who may call the API. A token's secret is shown once, when it is
//! created, and only its SHA-256 hash is stored (secrets are long and random, so a fast hash is
//! enough and a leaked table reveals no token). Each token also gets a webhook signing secret,
//! shown once too but stored as is: the service signs its notifications with it.

use jiff::Timestamp;
use sqlx::{AssertSqlSafe, Row};

use super::error::Result;
use super::store::Store;
use super::token_grants::NewToken;
use super::token_row::{TOKEN_COLUMNS, Token, token_from_row};

impl Store {
    /// Creates a token for `user` and returns it with its secret, which is not stored.
    pub async fn create_token(
        &self,
        user: &str,
        admin: bool,
        delegate: bool,
    ) -> Result<(Token, String)> {
        self.create_limited_token(user, admin, delegate, None).await
    }

    /// [`Store::create_token`], with a limit of the user's active Jobs of its own.
    pub async fn create_limited_token(
        &self,
        user: &str,
        admin: bool,
        delegate: bool,
        max_concurrent: Option<i64>,
    ) -> Result<(Token, String)> {
        self.create_token_with(&NewToken {
            user: user.to_owned(),
            admin,
            delegate,
            max_concurrent,
            expires_at: None,
            description: None,
        })
        .await
    }

    /// The secret that signs the notifications of submissions sent with token `id` (`None` for
    /// an unknown token, or one created before webhooks).
    pub async fn webhook_secret(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT webhook_secret FROM tokens WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("webhook_secret")?,
            None => None,
        })
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token; false if there is no such token or it was revoked already.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let _turn = self.turn_to_write().await;
        let result =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(Timestamp::now().to_string())
                .bind(id.to_owned())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The unrevoked token with this secret. Lookups of requests arriving together share a
    /// statement (see `lookups`).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Token>> {
        let hash = secret_hash(secret);
        if let Some(lookups) = &self.lookups {
            return lookups.send(hash).await;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1 AND revoked_at IS NULL"
        )))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }
}

/// The stored form of a token's secret.
pub(super) fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
