//! Bearer tokens: every `/v1` handler takes a [`Caller`], so no route can forget to check.
//!
//! A token with the delegate right (a portal, a dashboard backend) may act for a user with
//! `X-On-Behalf-Of: USER`; the submission then belongs to that user and records who sent it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::Context;
use super::error::ApiError;
use crate::domain::{Caller, parse_user_name};

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
        let now = std::time::Instant::now();
        if let Some(address) = &address
            && let Some(wait) = context.unknown_tokens.exhausted(address, now)
        {
            return Err(ApiError::UnknownTokens(wait));
        }
        let Some(token) = context.store.authenticate(secret).await? else {
            if let Some(address) = &address {
                let _ = context.unknown_tokens.check(address, now);
            }
            return Err(ApiError::Unauthorized(
                "this token is unknown or revoked".into(),
            ));
        };
        if let Err(wait) = context
            .rate_limit
            .check(&token.id, std::time::Instant::now())
        {
            return Err(ApiError::TooManyRequests(wait));
        }
        let on_behalf_of = match parts.headers.get(ON_BEHALF_OF) {
            None => None,
            Some(value) => {
                if !token.delegate {
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
            user: on_behalf_of.unwrap_or_else(|| token.user.clone()),
            submitted_by: token.user,
            admin: token.admin,
            max_concurrent: token.max_concurrent,
            token: Some(token.id),
        })
    }
}
