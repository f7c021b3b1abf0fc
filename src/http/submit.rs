//! `POST /v1/submissions` and `/v1/submissions/batch`: storing new submissions, all or none,
//! once they are parsed (with what their `depends_on` names) and checked against what only
//! storage knows (whose the stored submissions they depend on are, and whether the token can
//! sign their notifications), with a batch's own limit of Jobs at once.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State as AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{Body, Submitted};
use super::responses::{NotJson, Unauthorized};
use super::submission_view::SubmissionView;
use crate::cluster::kueue;
use crate::domain::{
    Caller, FieldError, NewSubmissions, Queueing, SentAs, Submission, SubmissionRequest,
};
use crate::storage::{IdempotencyKey, Stored};

/// The most submissions one batch may carry.
const MAX_BATCH: usize = 10_000;

/// Many submissions at once, stored all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 10,000 submissions. Within a batch, `depends_on` may name other submissions of
    /// the batch by their `name` (a merge step after its samples).
    #[schema(min_items = 1, max_items = 10000)]
    pub submissions: Vec<SubmissionRequest>,
    /// At most this many of the batch's Jobs exist at once; the others stay queued and are
    /// dispatched in order as these end (besides the user's own limit).
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_concurrent: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The stored submissions, in the order they were sent.
    pub submissions: Vec<SubmissionView>,
}

/// Submit a payload to run as a Kubernetes Job.
///
/// The submission is stored before anything reaches the cluster; its Job is created right
/// after. Fields left out take the server's defaults. With an `Idempotency-Key`, a retry of the
/// same request returns the submission the first one stored instead of storing another.
#[utoipa::path(
    post,
    path = "/v1/submissions",
    tag = "submissions",
    request_body = SubmissionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first result", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        Unauthorized,
        (status = 201, description = "Stored; its Job is being created", body = SubmissionView,
         headers(("Location" = String, description = "The submission's URL"))),
        NotJson,
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Some fields are invalid, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit(
    AppState(context): AppState<Context>,
    caller: Caller,
    submitted: Submitted<SubmissionRequest>,
) -> ApiResult<Response> {
    let parsed = NewSubmissions::parse(
        vec![submitted.body],
        SentAs::Alone,
        &context.defaults,
        context.clusters.namespace(),
        &caller,
    )
    .map_err(ApiError::Invalid)?;
    check_signing(&context, &caller, &parsed).await?;
    check_queues(&context, &parsed).await?;
    let submissions = owned(&context, parsed).await?;
    let (stored, replayed) = store(&context, &caller, submissions, submitted.idempotency).await?;
    let submission = stored
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("an idempotency key recorded no submission".into()))?;
    let location = format!("/v1/submissions/{}", submission.id);
    // As `GET /v1/submissions/{id}` shows it; a new submission has no attempts yet.
    let mut view = SubmissionView::from(submission);
    view.attempts = Some(Vec::new());
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    mark_replayed(&mut response, replayed);
    Ok(response)
}

/// Stores new submissions, or, for a repeated `Idempotency-Key` with the same body, returns
/// what the first request stored (and `true`).
async fn store(
    context: &Context,
    caller: &Caller,
    submissions: Vec<Submission>,
    idempotency: Option<IdempotencyKey>,
) -> ApiResult<(Vec<Submission>, bool)> {
    // Keys are per user: two users' keys never collide.
    let idempotency = idempotency.map(|key| IdempotencyKey {
        key: format!("{}\n{}", caller.user, key.key),
        ..key
    });
    let Some(key) = idempotency else {
        let stored = context.store.insert(submissions).await?;
        tracing::info!(count = stored.len(), "submissions stored");
        return Ok((stored, false));
    };
    match context.store.insert_idempotent(&key, submissions).await? {
        Stored::New(stored) => {
            tracing::info!(count = stored.len(), "submissions stored");
            Ok((stored, false))
        }
        Stored::Replayed(earlier) => Ok((earlier, true)),
        Stored::KeyReused => Err(ApiError::Unprocessable(
            "this Idempotency-Key was already used with a different body; use a new key for a new request"
                .into(),
        )),
    }
}

impl Body for SubmissionRequest {}
impl Body for BatchRequest {}

/// Tells the client its request was a repeat, answered from what the first one stored.
pub(super) fn mark_replayed(response: &mut Response, replayed: bool) {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
}

/// Submit many payloads at once (up to 10,000): all are stored, or none.
#[utoipa::path(
    post,
    path = "/v1/submissions/batch",
    tag = "submissions",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first result", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        Unauthorized,
        (status = 201, description = "All stored", body = BatchResponse),
        NotJson,
        (status = 413, description = "Too many submissions or too large a body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Some fields are invalid (`submissions[i].field`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn submit_batch(
    AppState(context): AppState<Context>,
    caller: Caller,
    submitted: Submitted<BatchRequest>,
) -> ApiResult<Response> {
    let request = submitted.body;
    if request.submissions.len() > MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {MAX_BATCH} submissions, this one has {}",
            request.submissions.len()
        )));
    }
    if request.submissions.is_empty() {
        return Err(ApiError::invalid("submissions", "must not be empty"));
    }
    let mut errors = Vec::new();
    if let Some(limit) = request.max_concurrent
        && limit < 1
    {
        errors.push(FieldError::new("max_concurrent", "must be at least 1"));
    }
    let parsed = NewSubmissions::parse(
        request.submissions,
        SentAs::Batch,
        &context.defaults,
        context.clusters.namespace(),
        &caller,
    );
    let parsed = match parsed {
        Ok(parsed) if errors.is_empty() => parsed,
        Ok(_) => return Err(ApiError::Invalid(errors)),
        Err(mut field_errors) => {
            errors.append(&mut field_errors);
            return Err(ApiError::Invalid(errors));
        }
    };
    check_signing(&context, &caller, &parsed).await?;
    check_queues(&context, &parsed).await?;
    let mut submissions = owned(&context, parsed).await?;
    if let Some(limit) = request.max_concurrent {
        let group = uuid::Uuid::now_v7().to_string();
        for submission in &mut submissions {
            submission.limits.group = Some((group.clone(), limit));
        }
    }
    let (stored, replayed) = store(&context, &caller, submissions, submitted.idempotency).await?;
    let body = BatchResponse {
        submissions: stored.into_iter().map(SubmissionView::from).collect(),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    mark_replayed(&mut response, replayed);
    Ok(response)
}

/// Refuses a `notify_url` the service could not sign for: notifications are signed with the
/// webhook secret of the token that submitted, and tokens made before webhooks existed, like
/// an identity provider's tokens, have none. Refused here, a 422 on the field, rather
/// than each notification given up later where the user would not see why.
async fn check_signing(
    context: &Context,
    caller: &Caller,
    parsed: &NewSubmissions,
) -> ApiResult<()> {
    let notifying: Vec<usize> = parsed
        .submissions()
        .iter()
        .enumerate()
        .filter(|(_, submission)| submission.spec.notify.is_some())
        .map(|(index, _)| index)
        .collect();
    if notifying.is_empty() {
        return Ok(());
    }
    let reason = match &caller.token {
        None => "needs one of the service's own tokens: notifications are signed with its \
                 webhook secret, and an identity provider's token has none"
            .to_owned(),
        Some(token) => match context.store.webhook_secret(token).await? {
            Some(_) => return Ok(()),
            None => "this token has no webhook secret to sign notifications with (it was \
                     made before webhooks): ask an admin for a new token"
                .to_owned(),
        },
    };
    Err(ApiError::Invalid(
        notifying
            .into_iter()
            .map(|index| FieldError::new(parsed.field(index, "notify_url"), reason.clone()))
            .collect(),
    ))
}

/// Refuses a Kueue queue or priority class the cluster does not have, each named once
/// however many submissions name it. When the API server cannot be asked the submissions are
/// taken: their Jobs are created once it answers, and Kueue says then what it lacks.
async fn check_queues(context: &Context, parsed: &NewSubmissions) -> ApiResult<()> {
    let mut checked: HashMap<&Queueing, Vec<FieldError>> = HashMap::new();
    let mut refused = Vec::new();
    for (index, submission) in parsed.submissions().iter().enumerate() {
        let Some(queueing) = &submission.spec.queueing else {
            continue;
        };
        if !checked.contains_key(queueing) {
            let errors = match kueue::check_names(context.clusters.first(), queueing).await {
                Ok(errors) => errors,
                Err(error) => {
                    tracing::warn!(%error, "could not ask whether a Kueue queue exists");
                    Vec::new()
                }
            };
            checked.insert(queueing, errors);
        }
        for error in checked.get(queueing).into_iter().flatten() {
            refused.push(FieldError::new(
                parsed.field(index, &error.field),
                error.reason.clone(),
            ));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(refused))
    }
}

/// The parsed submissions, once storage says every stored submission they depend on is the
/// caller's.
async fn owned(context: &Context, parsed: NewSubmissions) -> ApiResult<Vec<Submission>> {
    let stored = parsed.stored_dependencies();
    let owners = if stored.is_empty() {
        Default::default()
    } else {
        context.store.owners_of(&stored).await?
    };
    parsed.owned(&owners).map_err(ApiError::Invalid)
}
