//! `/v1/tokens`: admins create tokens over HTTP; everyone lists and revokes their own (admins
//! any). A secret is shown once, in the answer that created it; lists never show one.

use axum::Json;
use axum::extract::{Path, State as AppState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::AppJson;
use crate::domain::{Caller, FieldError, parse_user_name};
use crate::storage::{NewToken, Token};

/// Longest description kept with a token.
const MAX_DESCRIPTION: usize = 500;

/// A token to create. Rights default to none; without an expiry it works until revoked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The user the token acts as (a label value: letters, digits, '-', '_', '.').
    #[schema(example = "alice")]
    pub user: String,
    /// May see and cancel every user's submissions, and manage tokens.
    #[serde(default)]
    pub admin: bool,
    /// May act for any user with `X-On-Behalf-Of`.
    #[serde(default)]
    pub delegate: bool,
    /// Jobs of the user's submissions sent with this token that may be active at once
    /// (instead of the server's `--max-concurrent`).
    #[schema(minimum = 1)]
    pub max_concurrent: Option<i64>,
    /// Expires this long after creation: `90m`, `12h`, `30d`, `1d12h`.
    #[schema(example = "30d")]
    pub expires_in: Option<String>,
    /// Expires at this time (RFC 3339); not with `expires_in`.
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
    /// What the token is for.
    #[schema(example = "nightly pipeline")]
    pub description: Option<String>,
}

impl CreateToken {
    /// The token to store, or every field that is wrong.
    fn parse(self, now: Timestamp) -> Result<NewToken, ApiError> {
        let mut errors = Vec::new();
        let user = parse_user_name(&self.user)
            .map_err(|reason| errors.push(FieldError::new("user", reason)))
            .ok();
        if self.max_concurrent.is_some_and(|limit| limit < 1) {
            errors.push(FieldError::new(
                "max_concurrent",
                "must be at least 1 (leave it out for the server's limit)",
            ));
        }
        let expires_at = match (self.expires_in, self.expires_at) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "expires_at",
                    "give expires_in or expires_at, not both",
                ));
                None
            }
            (Some(expires_in), None) => expiry_after(&expires_in, now)
                .map_err(|reason| errors.push(FieldError::new("expires_in", reason)))
                .ok(),
            (None, Some(expires_at)) => expiry_at(&expires_at, now)
                .map_err(|reason| errors.push(FieldError::new("expires_at", reason)))
                .ok(),
            (None, None) => None,
        };
        let description = self.description.filter(|text| !text.trim().is_empty());
        if description
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_DESCRIPTION)
        {
            errors.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION} characters"),
            ));
        }
        match user {
            Some(user) if errors.is_empty() => Ok(NewToken {
                user,
                admin: self.admin,
                delegate: self.delegate,
                max_concurrent: self.max_concurrent,
                expires_at,
                description,
            }),
            _ => Err(ApiError::Invalid(errors)),
        }
    }
}

/// The expiry `expires_in` after `now`.
pub fn expiry_after(expires_in: &str, now: Timestamp) -> Result<Timestamp, String> {
    let duration = crate::duration::parse(expires_in)?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|duration| now.checked_add(duration).ok())
        .ok_or_else(|| "is too far in the future".into())
}

fn expiry_at(expires_at: &str, now: Timestamp) -> Result<Timestamp, String> {
    let at: Timestamp = expires_at.parse().map_err(|_| {
        format!("{expires_at:?} is not an RFC 3339 time such as 2027-01-01T00:00:00Z")
    })?;
    if at <= now {
        return Err("is in the past".into());
    }
    Ok(at)
}

/// A token as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    /// Right: sees and cancels every user's submissions, manages tokens.
    pub admin: bool,
    /// Right: acts for any user with `X-On-Behalf-Of`.
    pub delegate: bool,
    /// Its own limit of its user's active Jobs (none: the server's).
    pub max_concurrent: Option<i64>,
    pub created_at: String,
    /// When it stops working (none: never).
    pub expires_at: Option<String>,
    /// When it was last used, to about a minute.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub description: Option<String>,
}

impl From<Token> for TokenView {
    fn from(token: Token) -> Self {
        TokenView {
            id: token.id,
            user: token.user,
            admin: token.admin,
            delegate: token.delegate,
            max_concurrent: token.max_concurrent,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
            description: token.description,
        }
    }
}

/// A new token, with its secret: shown only in this answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// Send as `Authorization: Bearer <secret>`. It cannot be shown again.
    pub secret: String,
    /// The key of the HMAC-SHA256 signatures of the notifications sent for this token's
    /// submissions (`notify_url`; see the README's Webhooks). It cannot be shown again either.
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// Oldest first, revoked ones too.
    pub items: Vec<TokenView>,
}

/// Create a token (admins only). Its secret is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 401, description = "No token, or an unknown, revoked or expired one", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Created; the secret is shown only now", body = CreatedToken),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    AppState(context): AppState<Context>,
    caller: Caller,
    AppJson(request): AppJson<CreateToken>,
) -> ApiResult<Response> {
    if !caller.admin {
        return Err(ApiError::Forbidden(
            "only admin tokens may create tokens".into(),
        ));
    }
    let new = request.parse(Timestamp::now())?;
    let (token, secret) = context.store.create_token_with(&new).await?;
    let webhook_secret = context.store.webhook_secret(&token.id).await?;
    tracing::info!(token_id = %token.id, user = %token.user, by = %caller.submitted_by, "token created");
    let location = format!("/v1/tokens/{}", token.id);
    let body = CreatedToken {
        token: token.into(),
        secret,
        webhook_secret,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List tokens: an admin sees every token, anyone else their own. Never their secrets.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    responses(
        (status = 401, description = "No token, or an unknown, revoked or expired one", body = Problem, content_type = "application/problem+json"),
        (status = 200, body = TokenList),
    )
)]
pub async fn list(
    AppState(context): AppState<Context>,
    caller: Caller,
) -> ApiResult<Json<TokenList>> {
    let tokens = if caller.admin {
        context.store.tokens().await?
    } else {
        context.store.tokens_of(&caller.submitted_by).await?
    };
    Ok(Json(TokenList {
        items: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revoke a token: it stops working at once. An admin may revoke any, anyone else their own.
/// Revoking a revoked token again is not an error.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 401, description = "No token, or an unknown, revoked or expired one", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "Revoked (now or before)"),
        (status = 404, description = "No such token (or not the caller's)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(token_id = %id))]
pub async fn revoke(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::NotFound(format!("there is no token {id:?}"));
    let token = context.store.token(&id).await?.ok_or_else(not_found)?;
    if !caller.admin && token.user != caller.submitted_by {
        return Err(not_found());
    }
    if context.store.revoke_token(&token.id).await? {
        tracing::info!(user = %token.user, by = %caller.submitted_by, "token revoked");
    }
    Ok(StatusCode::NO_CONTENT)
}
