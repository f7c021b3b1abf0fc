//! Rerunning: one final submission, or every failed or cancelled one a filter matches, each
//! under its id in a new Job, with what had ended only because of them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State as AppState};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{Body, Submitted};
use super::query_filters::label_errors;
use super::responses::{NoSuchSubmission, NotJson, Unauthorized};
use super::submission_lookup::find;
use super::submission_view::SubmissionView;
use super::submit::mark_replayed;
use crate::cluster::metrics::RerunCause;
use crate::domain::{Caller, Cpus, FieldError, RerunChanges, State, Submission, not_rerunnable};
use crate::storage::{Filter, IdempotencyKey, Reran, RerunStored};

impl Body for RerunChanges {
    const EMPTY_BODY_IS_DEFAULT: bool = true;
}

/// Which final submissions to rerun, and what changes. `labels` or `name` is required; all
/// given must match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunFilter {
    /// Labels the submission must carry (all of them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `failed`, `cancelled` or both (the default: both).
    #[serde(default)]
    pub state: Vec<State>,
    /// Only submissions with this name.
    pub name: Option<String>,
    /// Memory for each payload: its request, and its limit if it has one.
    #[schema(example = "8000M")]
    pub memory: Option<String>,
    /// CPUs for each payload: its request, and its limit if it has one.
    #[schema(value_type = Option<String>, example = "2")]
    pub cpus: Option<Cpus>,
    /// Minutes each payload may run.
    #[schema(minimum = 1, maximum = 5256000)]
    pub time: Option<i64>,
    /// Another image for each.
    pub image: Option<String>,
}

impl RerunFilter {
    fn changes(&self) -> RerunChanges {
        RerunChanges {
            memory: self.memory.clone(),
            cpus: self.cpus.clone(),
            time: self.time,
            image: self.image.clone(),
        }
    }
}

impl Body for RerunFilter {}

/// What a rerun of many did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RerunResponse {
    /// The submissions this request runs again, newest first: `queued`, or `waiting` for
    /// dependencies that run again too.
    pub rerun: Vec<SubmissionView>,
    /// Submissions that had failed or been cancelled only because one of those did, waiting
    /// for them again.
    pub also_rerun: Vec<SubmissionView>,
    /// Submissions that matched but were not rerun, and why.
    pub not_rerun: Vec<NotRerun>,
}

/// A submission that matched a rerun but was not rerun.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotRerun {
    pub id: String,
    pub reason: String,
}

/// The rerun submission, and what comes back with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RerunSubmission {
    #[serde(flatten)]
    pub submission: SubmissionView,
    /// The ids of submissions that had failed or been cancelled only because it did, waiting
    /// for it again.
    pub also_rerun: Vec<String>,
}

/// Run a failed or cancelled submission again, under its id, in a new Job (`...-r1`).
///
/// Its state goes back to `queued` (or `waiting`, for its dependencies), `reruns` counts one
/// more, and its history stays: `attempts`, every earlier pod's log (`?pod=`), its events.
/// Submissions that failed or were cancelled only because it did come back with it,
/// `waiting`. The body may change `memory`, `cpus`, `time` or `image`. A succeeded or active
/// submission, or a TES task (its engine retries it), is not rerun (409).
#[utoipa::path(
    post,
    path = "/v1/submissions/{id}/rerun",
    tag = "submissions",
    params(("id" = String, Path, description = "The submission's id")),
    request_body(content = Option<RerunChanges>, description = "What changes (optional)"),
    responses(
        Unauthorized,
        (status = 200, description = "Running again, with what comes back with it", body = RerunSubmission),
        NoSuchSubmission,
        (status = 409, description = "It succeeded, is still active, is a TES task, or depends on one that failed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A change is invalid, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(submission_id = %id))]
pub async fn rerun(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
    submitted: Submitted<RerunChanges>,
) -> ApiResult<Response> {
    let submission = find(&context, &caller, &id).await?;
    let changes = submitted.body;
    changes
        .check(&context.defaults)
        .map_err(ApiError::Invalid)?;
    // A change the submission cannot take is the client's to fix (422).
    changes.apply(&submission.spec).map_err(ApiError::Invalid)?;
    let key = keyed(&caller, submitted.idempotency, &submission.id.to_string());
    if key.is_none() {
        // (A repeat under a key finds it rerun already, and is answered as the first was.)
        refuse_unless_rerunnable(&submission)?;
    }
    let filter = Filter {
        ids: vec![submission.id],
        ..Filter::default()
    };
    let (reran, replayed) = store(&context, &filter, &changes, key.as_ref()).await?;
    let Reran {
        matched,
        dependents,
        left,
        superseded,
    } = reran;
    context.cancels.delete_jobs(superseded);
    if !replayed {
        count_reruns(&context, matched.len() + dependents.len());
    }
    if let Some((_, why)) = left.into_iter().next() {
        return Err(ApiError::Conflict(why));
    }
    // A submission that had ended only because its dependency did comes back as a dependent.
    let (mut rerun, others): (Vec<Submission>, Vec<Submission>) = matched
        .into_iter()
        .chain(dependents)
        .partition(|rerun| rerun.id == submission.id);
    let dependents = others;
    let Some(rerun) = rerun.pop() else {
        // It ended up otherwise before the rerun was written (or a replay found nothing).
        let now = find(&context, &caller, &id).await?;
        refuse_unless_rerunnable(&now)?;
        return Err(ApiError::Conflict(format!(
            "the submission is {}; nothing was rerun",
            now.progress.state
        )));
    };
    tracing::info!(
        also = dependents.len(),
        reruns = rerun.reruns,
        "submission rerun"
    );
    let mut response = Json(RerunSubmission {
        submission: rerun.into(),
        also_rerun: dependents
            .iter()
            .map(|dependent| dependent.id.to_string())
            .collect(),
    })
    .into_response();
    mark_replayed(&mut response, replayed);
    Ok(response)
}

/// Run again every failed or cancelled submission that matches, like `rerun ID` for each.
///
/// Submissions that failed or were cancelled only because one of those did (a campaign's
/// merge) come back with them, `waiting`; those that succeeded are left alone. A match whose
/// own dependency failed and is not rerun with it is left as it is, in `not_rerun`.
#[utoipa::path(
    post,
    path = "/v1/submissions/rerun",
    tag = "submissions",
    request_body = RerunFilter,
    responses(
        Unauthorized,
        (status = 200, description = "What runs again (possibly nothing)", body = RerunResponse),
        NotJson,
        (status = 422, description = "The filter or a change is invalid, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rerun_matching(
    AppState(context): AppState<Context>,
    caller: Caller,
    submitted: Submitted<RerunFilter>,
) -> ApiResult<Response> {
    let request = submitted.body;
    let mut errors = Vec::new();
    if request.labels.is_empty() && request.name.is_none() {
        errors.push(FieldError::new(
            "body",
            "give labels or name: which submissions to rerun",
        ));
    }
    errors.extend(label_errors(&request.labels));
    for state in &request.state {
        if !matches!(state, State::Failed | State::Cancelled) {
            errors.push(FieldError::new(
                "state",
                format!("{state} submissions cannot be rerun; use failed or cancelled"),
            ));
        }
    }
    let changes = request.changes();
    if let Err(mut invalid) = changes.check(&context.defaults) {
        errors.append(&mut invalid);
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let filter = Filter {
        states: if request.state.is_empty() {
            vec![State::Failed, State::Cancelled]
        } else {
            request.state
        },
        name: request.name,
        labels: request.labels.into_iter().collect(),
        ids: Vec::new(),
        owner: Some(caller.user.clone()),
        cluster: None,
        queue: None,
    };
    let key = keyed(&caller, submitted.idempotency, "matching");
    let (reran, replayed) = store(&context, &filter, &changes, key.as_ref()).await?;
    context
        .cancels
        .delete_jobs(reran.superseded.iter().cloned());
    if !replayed {
        count_reruns(&context, reran.matched.len() + reran.dependents.len());
    }
    tracing::info!(
        count = reran.matched.len(),
        dependents = reran.dependents.len(),
        left = reran.left.len(),
        "submissions rerun"
    );
    let mut response = Json(RerunResponse {
        rerun: reran
            .matched
            .into_iter()
            .map(SubmissionView::from)
            .collect(),
        also_rerun: reran
            .dependents
            .into_iter()
            .map(SubmissionView::from)
            .collect(),
        not_rerun: reran
            .left
            .into_iter()
            .map(|(submission, reason)| NotRerun {
                id: submission.id.to_string(),
                reason,
            })
            .collect(),
    })
    .into_response();
    mark_replayed(&mut response, replayed);
    Ok(response)
}

/// Counts `count` submissions rerun by request in `/metrics`.
fn count_reruns(context: &Context, count: usize) {
    context
        .clusters
        .first()
        .metrics()
        .reruns
        .get_or_create(&RerunCause { cause: "request" })
        .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
}

/// A 409 saying why `submission` cannot be rerun, if it cannot.
fn refuse_unless_rerunnable(submission: &Submission) -> ApiResult<()> {
    match not_rerunnable(submission) {
        Some(why) => Err(ApiError::Conflict(why)),
        None => Ok(()),
    }
}

/// The caller's `Idempotency-Key` for a rerun of `what`: keys are per user, and a key sent
/// with a submit or another rerun is another request's.
fn keyed(caller: &Caller, key: Option<IdempotencyKey>, what: &str) -> Option<IdempotencyKey> {
    key.map(|key| IdempotencyKey {
        key: format!("{}\n{}", caller.user, key.key),
        fingerprint: format!("rerun {what} {}", key.fingerprint),
    })
}

/// Reruns what `filter` matches with `changes`; `true` with it when it is a repeat's answer.
async fn store(
    context: &Context,
    filter: &Filter,
    changes: &RerunChanges,
    key: Option<&IdempotencyKey>,
) -> ApiResult<(Reran, bool)> {
    let spec_of = |submission: &Submission| {
        changes.apply(&submission.spec).map_err(|errors| {
            errors
                .into_iter()
                .map(|error| format!("{}: {}", error.field, error.reason))
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    match context.store.rerun_matching(filter, spec_of, key).await? {
        RerunStored::New(reran) => Ok((reran, false)),
        RerunStored::Replayed(reran) => Ok((reran, true)),
        RerunStored::KeyReused => Err(ApiError::Unprocessable(
            "this Idempotency-Key was already used with a different request; use a new key for a new request"
                .into(),
        )),
    }
}
