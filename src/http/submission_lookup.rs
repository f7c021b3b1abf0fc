//! The submission a request's path names, as the handlers of one submission (get, pods, logs,
//! events, cancel) find it: only if the caller may see it.

use std::str::FromStr;

use super::context::Context;
use super::error::{ApiError, ApiResult};
use crate::domain::{Caller, Submission, SubmissionId};

pub fn parse_id(text: &str) -> ApiResult<SubmissionId> {
    SubmissionId::from_str(text)
        .map_err(|_| ApiError::NotFound(format!("there is no submission with id {text:?}")))
}

/// The submission, if it exists and the caller may see it (others' are "not found", so ids
/// reveal nothing).
pub async fn find(context: &Context, caller: &Caller, id: &str) -> ApiResult<Submission> {
    let id = parse_id(id)?;
    context
        .store
        .get(id)
        .await?
        .filter(|submission| caller.may_access(&submission.owner))
        .ok_or_else(|| ApiError::NotFound(format!("there is no submission with id {id}")))
}
