//! `POST /ga4gh/tes/v1/tasks`, `GET /ga4gh/tes/v1/tasks` and `GET /ga4gh/tes/v1/tasks/{id}`:
//! creating a task (stored with its submission before anything reaches the cluster), and
//! reading tasks back in a view. Every refusal is a 400 problem naming the field, as TES asks.

use axum::Json;
use axum::extract::{Path, State as AppState};

use crate::domain::tes::document::{CreateTaskResponse, ListTasksResponse, Task, View};
use crate::domain::tes::list::{page_token, parse_list_query};
use crate::domain::tes::parse::parse_task;
use crate::domain::tes::runs::ExecutorRun;
use crate::domain::tes::view::{Recorded, render};
use crate::domain::{Caller, FieldError, Submission, SubmissionId};
use crate::http::Context;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{AppJson, QueryPairs};
use crate::storage::StoredTask;

/// TES answers every refused request with 400, where `/v1` says 422 for a well-formed body.
pub fn refused(errors: Vec<FieldError>) -> ApiError {
    let detail = errors
        .iter()
        .map(|error| format!("{} {}", error.field, error.reason))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::BadRequest { detail, errors }
}

fn as_tes(error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid(errors) => refused(errors),
        other => other,
    }
}

/// Create a task. It is stored before the answer, and its Job is created right after.
#[utoipa::path(
    post,
    path = "/ga4gh/tes/v1/tasks",
    tag = "TaskService",
    operation_id = "CreateTask",
    request_body = Task,
    responses(
        (status = 200, body = CreateTaskResponse),
        (status = 400, description = "A field is refused (named in `errors`); nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    AppState(context): AppState<Context>,
    caller: Caller,
    body: Result<AppJson<Task>, ApiError>,
) -> ApiResult<Json<CreateTaskResponse>> {
    let AppJson(task) = body.map_err(as_tes)?;
    let parsed = parse_task(task, &context.defaults).map_err(refused)?;
    let submission = Submission::new(parsed.spec, context.clusters.namespace(), &caller);
    let stored = context
        .store
        .insert_task(submission, &parsed.document, &parsed.notes)
        .await?;
    tracing::info!(submission_id = %stored.id, "task stored");
    Ok(Json(CreateTaskResponse {
        id: stored.id.to_string(),
    }))
}

/// List tasks, newest first, filtered by name prefix, state and tags.
#[utoipa::path(
    get,
    path = "/ga4gh/tes/v1/tasks",
    tag = "TaskService",
    operation_id = "ListTasks",
    params(
        ("name_prefix" = Option<String>, Query, description = "Only tasks whose name starts with this (literal, case-sensitive)"),
        ("state" = Option<String>, Query, description = "Only tasks in this state"),
        ("tag_key" = Option<Vec<String>>, Query, description = "Only tasks with this tag (repeated; paired with `tag_value` in order)"),
        ("tag_value" = Option<Vec<String>>, Query, description = "The value the `tag_key` of the same position must have (missing or empty: any)"),
        ("page_size" = Option<u32>, Query, description = "Tasks a page (default 256, at most 2048)", minimum = 1),
        ("page_token" = Option<String>, Query, description = "`next_page_token` of the previous page"),
        ("view" = Option<View>, Query, description = "MINIMAL (the default), BASIC or FULL"),
    ),
    responses(
        (status = 200, body = ListTasksResponse),
        (status = 400, description = "A query parameter is refused", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    AppState(context): AppState<Context>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<ListTasksResponse>> {
    let query = parse_list_query(&pairs).map_err(refused)?;
    let owner = (!caller.admin).then_some(caller.user.as_str());
    let mut tasks = context.store.list_tasks(owner, &query).await?;
    let more = tasks.len() > query.page_size as usize;
    tasks.truncate(query.page_size as usize);
    let next_page_token = more
        .then(|| tasks.last().map(|task| page_token(task.submission.id)))
        .flatten();
    let mut runs = if query.view == View::Minimal {
        Default::default()
    } else {
        let ids: Vec<SubmissionId> = tasks.iter().map(|task| task.submission.id).collect();
        let with_output = query.view == View::Full;
        context.store.executor_runs(&ids, with_output).await?
    };
    Ok(Json(ListTasksResponse {
        tasks: tasks
            .into_iter()
            .map(|task| {
                let runs = runs.remove(&task.submission.id).unwrap_or_default();
                shown(task, runs, query.view)
            })
            .collect(),
        next_page_token,
    }))
}

/// One task, in a view.
#[utoipa::path(
    get,
    path = "/ga4gh/tes/v1/tasks/{id}",
    tag = "TaskService",
    operation_id = "GetTask",
    params(
        ("id" = String, Path, description = "The task's id"),
        ("view" = Option<View>, Query, description = "MINIMAL (the default), BASIC or FULL"),
    ),
    responses(
        (status = 200, body = Task),
        (status = 400, description = "A query parameter is refused", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task (or another user's)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    AppState(context): AppState<Context>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryPairs,
) -> ApiResult<Json<Task>> {
    query.only(&["view"]).map_err(as_tes)?;
    let view = match query.single("view").map_err(as_tes)? {
        None => View::Minimal,
        Some(name) => View::named(name).ok_or_else(|| {
            refused(vec![FieldError::new(
                "view",
                "must be MINIMAL, BASIC or FULL",
            )])
        })?,
    };
    let task = find(&context, &caller, &id).await?;
    let runs = if view == View::Minimal {
        Vec::new()
    } else {
        let id = task.submission.id;
        context
            .store
            .executor_runs(&[id], view == View::Full)
            .await?
            .remove(&id)
            .unwrap_or_default()
    };
    Ok(Json(shown(task, runs, view)))
}

/// A stored task, with what its executors did, as `view` shows it.
fn shown(task: StoredTask, runs: Vec<ExecutorRun>, view: View) -> Task {
    let recorded = Recorded {
        notes: task.notes,
        runs,
        report: task.report,
    };
    render(&task.submission, &task.document, &recorded, view)
}

/// The task `id`, if it exists and the caller may see it (others' are "not found", so ids
/// reveal nothing).
pub async fn find(context: &Context, caller: &Caller, id: &str) -> ApiResult<StoredTask> {
    let missing = || ApiError::NotFound(format!("there is no task with id {id:?}"));
    let id: SubmissionId = id.parse().map_err(|_| missing())?;
    context
        .store
        .get_task(id)
        .await?
        .filter(|task| caller.may_access(&task.submission.owner))
        .ok_or_else(missing)
}
