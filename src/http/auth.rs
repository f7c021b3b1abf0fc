//! Bearer tokens: every `/v1` handler takes a [`Caller`], so no route can forget to check.
//!
//! A token with the delegate right (a portal, a dashboard backend) may act for a user with
//! `X-On-Behalf-Of: USER`; the submission then belongs to that user and records who sent it.
//!
//! With an OpenID Connect issuer configured, a bearer value shaped like a JWT is checked by
//! [`super::oidc`] instead, and its holder gets the same rights from their groups.
//!
//! An expired token is refused with a problem that says so. When a token was last used is
//! written at most once per [`TokenUse`](super::token_use::TokenUse) resolution (a minute) per token, in the background, so
//! requests never wait for or each cost a write.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::context::Context;
use super::error::ApiError;
use crate::domain::{Caller, parse_user_name};
use crate::storage::Token;

pub const ON_BEHALF_OF: &str = "x-on-behalf-of";

impl FromRequestParts<Context> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        context: &Context,
    ) -> Result<Self, Self::Rejection> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("send a token: Authorization: Bearer <token>".into())
            })?;
        // An address that keeps sending unknown tokens is refused before the lookup, so
        // guessing tokens costs the database nothing past its budget.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_string());
        let now = Instant::now();
        if let Some(address) = &address
            && let Some(wait) = context.unknown_tokens.exhausted(address, now)
        {
            return Err(ApiError::UnknownTokens(wait));
        }
        let holder = match &context.oidc {
            Some(oidc) if super::oidc::looks_like_jwt(secret) => match oidc.verify(secret).await {
                Ok(identity) => Holder {
                    rate_key: format!("oidc:{}", identity.user),
                    user: identity.user,
                    admin: identity.admin,
                    delegate: identity.delegate,
                    max_concurrent: None,
                    token: None,
                },
                Err(refusal) => {
                    if let Some(address) = &address {
                        let _ = context.unknown_tokens.check(address, now);
                    }
                    tracing::info!(%refusal, "refused an OpenID Connect token");
                    return Err(ApiError::Unauthorized(refusal.to_string()));
                }
            },
            _ => own_token(context, secret, address.as_deref(), now).await?,
        };
        if let Err(wait) = context
            .rate_limit
            .check(&holder.rate_key, std::time::Instant::now())
        {
            return Err(ApiError::TooManyRequests(wait));
        }
        let on_behalf_of = match parts.headers.get(ON_BEHALF_OF) {
            None => None,
            Some(value) => {
                if !holder.delegate {
                    return Err(ApiError::Forbidden(
                        "this token may not act on behalf of other users (X-On-Behalf-Of)".into(),
                    ));
                }
                let user = value
                    .to_str()
                    .map_err(|_| "must be text".to_owned())
                    .and_then(parse_user_name)
                    .map_err(|reason| ApiError::bad_request("X-On-Behalf-Of", reason))?;
                Some(user)
            }
        };
        let caller = Caller {
            user: on_behalf_of.unwrap_or_else(|| holder.user.clone()),
            submitted_by: holder.user,
            admin: holder.admin,
            max_concurrent: holder.max_concurrent,
            token: holder.token,
        };
        // The request's span (see `router`) names its user from here on.
        tracing::Span::current().record("user", tracing::field::display(&caller.user));
        Ok(caller)
    }
}

/// Who sent a request, by whichever kind of token: one of ours or the identity provider's.
struct Holder {
    user: String,
    admin: bool,
    delegate: bool,
    max_concurrent: Option<i64>,
    /// The id of our token, if it was one of ours.
    token: Option<String>,
    /// Whose request budget this request spends.
    rate_key: String,
}

/// The holder of one of our own tokens, looked up by its secret.
async fn own_token(
    context: &Context,
    secret: &str,
    address: Option<&str>,
    now: Instant,
) -> Result<Holder, ApiError> {
    let Some(token) = context.store.authenticate(secret).await? else {
        if let Some(address) = address {
            let _ = context.unknown_tokens.check(address, now);
        }
        return Err(ApiError::Unauthorized(
            "this token is unknown or revoked".into(),
        ));
    };
    if let Some(expired) = expired(&token) {
        return Err(ApiError::Unauthorized(format!(
            "this token expired at {expired}; ask an admin for a new one"
        )));
    }
    context.token_use.used(&context.store, &token);
    Ok(Holder {
        rate_key: token.id.clone(),
        user: token.user,
        admin: token.admin,
        delegate: token.delegate,
        max_concurrent: token.max_concurrent,
        token: Some(token.id),
    })
}

/// When the token expired, if it has (a stored expiry that cannot be read counts as expired).
fn expired(token: &Token) -> Option<String> {
    let expires_at = token.expires_at.as_deref()?;
    match expires_at.parse::<jiff::Timestamp>() {
        Ok(at) if at > jiff::Timestamp::now() => None,
        Ok(_) => Some(expires_at.to_owned()),
        Err(error) => {
            tracing::error!(token_id = %token.id, %error, "unreadable token expiry; refusing it");
            Some(expires_at.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(last_used_at: Option<&str>) -> Token {
        Token {
            id: "t1".into(),
            user: "alice".into(),
            admin: false,
            delegate: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            revoked_at: None,
            max_concurrent: None,
            expires_at: None,
            last_used_at: last_used_at.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn only_past_expiries_count() {
        let mut expiring = token(None);
        assert_eq!(expired(&expiring), None);
        expiring.expires_at = Some("2000-01-01T00:00:00Z".into());
        assert_eq!(expired(&expiring).as_deref(), Some("2000-01-01T00:00:00Z"));
        expiring.expires_at = Some("2999-01-01T00:00:00Z".into());
        assert_eq!(expired(&expiring), None);
    }
}
