//! The TES routes under `/ga4gh/tes/v1`, and their OpenAPI document (`openapi/tes.json`,
//! served at `/ga4gh/tes/openapi.json`), generated from the same handlers and types.
//!
//! TES is served under this prefix only: `/v1/tasks` and `/tasks`, where py-tes re-sends a
//! request after a 404 or a 5xx, stay 404, so a re-sent create never stores a second task.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::OpenApi;

use super::{cancel, service_info, tasks};
use crate::domain::tes::document;
use crate::http::Context;
use crate::http::error::Problem;

/// A task's body is small: at most 512 KiB of inline contents and the rest.
const TASK_BODY_LIMIT: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "submission-helper: GA4GH Task Execution Service",
        version = "1.1.0",
        description = "The GA4GH TES 1.1 API of submission-helper. Each task is a submission \
                       (same id, owners and tokens as `/v1`) whose Job runs the executors in \
                       order in one pod. Files are `file://` URLs under the volume claim's \
                       mount path; other URL schemes are refused. Kubernetes merges each \
                       executor's stdout and stderr into one log.",
        license(name = "Apache-2.0")
    ),
    paths(
        service_info::service_info,
        tasks::list,
        tasks::create,
        tasks::get,
        cancel::cancel,
    ),
    components(schemas(
        document::TesState,
        document::View,
        document::FileType,
        document::Task,
        document::Input,
        document::Output,
        document::Resources,
        document::Executor,
        document::TaskLog,
        document::ExecutorLog,
        document::OutputFileLog,
        document::CreateTaskResponse,
        document::ListTasksResponse,
        document::ServiceInfo,
        document::ServiceType,
        document::Organization,
        cancel::CancelTaskResponse,
        Problem,
    )),
    security(("bearer" = [])),
    modifiers(&BearerTokens),
    tags((name = "TaskService", description = "GA4GH TES 1.1 tasks"))
)]
struct TesDoc;

/// The same tokens as `/v1`.
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The same tokens as the service's `/v1` API."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The TES OpenAPI document, as committed in `openapi/tes.json`.
pub fn openapi_json() -> String {
    let mut json = TesDoc::openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The TES routes. `POST /tasks/{id}:cancel` is routed as `POST /tasks/{segment}`, whose
/// handler takes only segments ending with `:cancel`.
pub fn router() -> Router<Context> {
    let document = openapi_json();
    Router::new()
        .route(
            "/ga4gh/tes/v1/service-info",
            get(service_info::service_info),
        )
        .route("/ga4gh/tes/v1/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/ga4gh/tes/v1/tasks/{id}",
            get(tasks::get).post(cancel::cancel),
        )
        .route(
            "/ga4gh/tes/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document,
                )
            }),
        )
        .layer(DefaultBodyLimit::max(TASK_BODY_LIMIT))
}
