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

/// What a route about one submission answers when there is none the caller may see.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "No such submission",
    content_type = "application/problem+json"
)]
pub struct NoSuchSubmission(pub Problem);

/// What a route that asks the cluster answers when the cluster cannot be asked.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "The cluster cannot be asked",
    content_type = "application/problem+json"
)]
pub struct ClusterUnavailable(pub Problem);

/// What a route that reads a JSON body answers when the body is not JSON.
#[derive(IntoResponses)]
pub enum NotJson {
    #[response(
        status = 400,
        description = "The body is not JSON",
        content_type = "application/problem+json"
    )]
    Malformed(Problem),
    #[response(
        status = 415,
        description = "The body is not declared as JSON",
        content_type = "application/problem+json"
    )]
    NotDeclared(Problem),
}
