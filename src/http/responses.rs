//! The error answers many routes share, documented once as OpenAPI response groups, so a
//! handler names the group instead of repeating its lines.

use utoipa::IntoResponses;

use super::error::Problem;

/// What a route that needs a token answers without one that counts.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "No token, or an unknown or revoked one",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(pub Problem);
