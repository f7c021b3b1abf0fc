//! Bearer tokens: every `/v1` handler takes a [`Caller`], so no route can forget to check.
//!
//! A token with the delegate right (a portal, a dashboard backend) may act for a user with
//! `X-On-Behalf-Of: USER`; the submission then belongs to that user and records who sent it.
//!
//! With an OpenID Connect issuer configured, a bearer value shaped like a JWT is checked by
//! [`super::oidc`] instead, and its holder gets the same rights from their groups.
//!
//! An expired token is refused with a problem that says so. When a token was last used is
//! written at most once per [`TokenUse`] resolution (a minute) per token, in the background, so
//! requests never wait for or each cost a write.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::Context;
use super::error::ApiError;
use crate::domain::{Caller, parse_user_name};
use crate::storage::{Store, Token};

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
        Ok(Caller {
            user: on_behalf_of.unwrap_or_else(|| holder.user.clone()),
            submitted_by: holder.user,
            admin: holder.admin,
            max_concurrent: holder.max_concurrent,
            token: holder.token,
        })
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

/// Records when tokens were last used, to within `resolution`: a use is written only when the
/// stored one is older than that and this process has not written one for the token since.
#[derive(Clone)]
pub struct TokenUse {
    resolution: Duration,
    written: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Tokens remembered at most before the stale ones are forgotten.
const REMEMBERED_USES: usize = 10_000;

impl TokenUse {
    pub fn new(resolution: Duration) -> Self {
        TokenUse {
            resolution,
            written: Arc::default(),
        }
    }

    /// Notes a use of `token`, writing it in the background if it is due.
    pub fn used(&self, store: &Store, token: &Token) {
        let now = jiff::Timestamp::now();
        if !self.due(token, now, Instant::now()) {
            return;
        }
        let (store, id) = (store.clone(), token.id.clone());
        tokio::spawn(async move {
            if let Err(error) = store.record_token_use(&id, now).await {
                tracing::warn!(token_id = %id, %error, "could not record a token's use");
            }
        });
    }

    /// Whether a use of `token` now should be written, and if so, claims the write.
    fn due(&self, token: &Token, now: jiff::Timestamp, instant: Instant) -> bool {
        let stored_recently = token
            .last_used_at
            .as_deref()
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .and_then(|at| now.duration_since(at).try_into().ok())
            .is_some_and(|since: Duration| since < self.resolution);
        if stored_recently {
            return false;
        }
        let Ok(mut written) = self.written.lock() else {
            return false;
        };
        if written
            .get(&token.id)
            .is_some_and(|at| instant.duration_since(*at) < self.resolution)
        {
            return false;
        }
        if written.len() >= REMEMBERED_USES {
            let resolution = self.resolution;
            written.retain(|_, at| instant.duration_since(*at) < resolution);
        }
        written.insert(token.id.clone(), instant);
        true
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
    fn a_tokens_use_is_written_at_most_once_a_minute() {
        let uses = TokenUse::new(Duration::from_secs(60));
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().expect("time");
        let start = Instant::now();

        assert!(uses.due(&token(None), now, start));
        assert!(!uses.due(&token(None), now, start + Duration::from_secs(59)));
        assert!(uses.due(&token(None), now, start + Duration::from_secs(61)));
    }

    #[test]
    fn a_use_stored_within_the_minute_is_not_written_again() {
        let uses = TokenUse::new(Duration::from_secs(60));
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().expect("time");

        assert!(!uses.due(&token(Some("2026-01-01T11:59:30Z")), now, Instant::now()));
        assert!(uses.due(&token(Some("2026-01-01T11:58:00Z")), now, Instant::now()));
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
