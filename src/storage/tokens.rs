//! The `tokens` table: who may call the API, with what rights and until when. A token's secret
//! is shown once, when it is created, and only its SHA-256 hash is stored (secrets are long and
//! random, so a fast hash is enough and a leaked table reveals no token). Each token also gets a
//! webhook signing secret, shown once too but stored as is: the service signs its notifications
//! with it. Lookups by secret of requests arriving together share a statement (`lookups`); the
//! row a token is read from is in `token_row`.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::{AssertSqlSafe, QueryBuilder, Row};

use super::error::Result;
use super::store::Store;
use super::token_row::{TOKEN_COLUMNS, Token, token_from_row};

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

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
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

    /// The unrevoked tokens among these secret hashes, by hash.
    pub(super) async fn tokens_by_hash(&self, hashes: &[&str]) -> Result<HashMap<String, Token>> {
        let mut builder = QueryBuilder::new(format!(
            "SELECT secret_hash, {TOKEN_COLUMNS} FROM tokens WHERE revoked_at IS NULL AND \
             secret_hash IN ("
        ));
        let mut separated = builder.separated(", ");
        for hash in hashes {
            separated.push_bind((*hash).to_owned());
        }
        builder.push(")");
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let hash: String = row.try_get("secret_hash")?;
            found.insert(hash, token_from_row(row)?);
        }
        Ok(found)
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
}

/// The stored form of a token's secret.
fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
