//! The routes and their documentation, and the layers every request passes through: request
//! ids, tracing, the request log, metrics, the time limit and CORS.
//!
//! Routes are registered through utoipa-axum's `OpenApiRouter`, so a route cannot exist without
//! its documentation, and `/openapi.json` is always the API that is served.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use super::context::Context;
use super::error::ApiError;
use super::time_limit::time_limit;
use super::{
    campaigns, cancel, cluster, events, health, logs, metrics, request_log, request_metrics, rerun,
    submissions, submit, tokens, ui,
};

/// Bodies of one submission are small; a batch of 10,000 is not.
const SUBMISSION_BODY_LIMIT: usize = 1024 * 1024;
const BATCH_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Batch requests read and stored at once; more wait their turn before their body is read.
/// The database stores one batch at a time anyway (SQLite) or gains little past a few
/// (Postgres), and 64 clients' batches of 1,000 read at once held 200 MiB (BENCHMARKS.md).
const BATCHES_AT_ONCE: usize = 4;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "submission-helper",
        description = "Run batch payloads on Kubernetes over plain HTTP. Each submission becomes a \
                       `batch/v1` Job labelled `app=submission-helper` that runs the command with \
                       `bash -cl` in the given image, with a registry pull secret and a volume claim \
                       mounted for the input data.",
        license(name = "Apache-2.0")
    ),
    security(("bearer" = [])),
    modifiers(&BearerTokens),
    tags(
        (name = "submissions", description = "Submit payloads and follow them"),
        (name = "cluster", description = "Live views of the cluster's Jobs and pods, as kubectl shows them"),
        (name = "tokens", description = "API tokens: create, list and revoke"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// Documents the bearer tokens every `/v1` route needs: the service's own
/// (`submission-helper token create`, `POST /v1/tokens`) or, where the server names an
/// OpenID Connect issuer, that issuer's access tokens.
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "One of the service's own tokens (`submission-helper token create`, \
                 `POST /v1/tokens`), or, where the server runs with `--oidc-issuer`, an access \
                 token (a JWT) of that OpenID Connect issuer for the server's audience.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The routes and their documentation, without state (also used to print the document). Every
/// route but the streams answers within `limit`; a log read without `follow` is bounded by its
/// handler.
fn api(limit: Duration) -> OpenApiRouter<Context> {
    let time_limit = axum::middleware::from_fn_with_state(limit, time_limit);
    let batch = OpenApiRouter::new()
        .routes(routes!(submit::submit_batch))
        .layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT))
        .layer(tower::limit::ConcurrencyLimitLayer::new(BATCHES_AT_ONCE))
        .layer(time_limit.clone());
    // A log follow waits for a pod and then streams for as long as the payload runs; the event
    // stream runs until its client leaves.
    let streams = OpenApiRouter::new()
        .routes(routes!(logs::logs))
        .routes(routes!(events::events));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(submissions::list, submit::submit))
        .routes(routes!(submissions::get))
        .routes(routes!(submissions::pods))
        .routes(routes!(cancel::cancel))
        .routes(routes!(cancel::cancel_matching))
        .routes(routes!(rerun::rerun))
        .routes(routes!(rerun::rerun_matching))
        .routes(routes!(campaigns::campaigns))
        .routes(routes!(campaigns::throughput))
        .routes(routes!(cluster::jobs))
        .routes(routes!(cluster::pods))
        .routes(routes!(cluster::submission_events))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .layer(time_limit)
        .merge(streams)
        .layer(DefaultBodyLimit::max(SUBMISSION_BODY_LIMIT))
        .merge(batch)
}

/// The OpenAPI document of the served API, as committed under `openapi/`.
pub fn openapi_json() -> String {
    let (_, openapi) = api(Duration::MAX).split_for_parts();
    let mut json = openapi.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The whole application: routes, documentation, request ids, tracing, the request log,
/// metrics and CORS.
pub fn router(context: Context) -> Router {
    let (router, openapi) = api(context.request_timeout).split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    let cors = cors(&context.cors_origins);
    let pages = Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(ui::router())
        .merge(super::tes::routes::router())
        .layer(axum::middleware::from_fn_with_state(
            context.request_timeout,
            time_limit,
        ));
    router
        .merge(pages)
        .fallback(|| async { ApiError::NotFound("there is nothing at this path".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this path does not answer to that method".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            context.http_metrics.clone(),
            request_metrics::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            context.log_requests,
            request_log::record,
        ))
        .with_state(context)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                // `user` is recorded once the request's token is read (see `auth`).
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                    user = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(tower::util::option_layer(cors))
}

/// CORS for the configured origins (none: no CORS headers at all, so a browser lets only the
/// service's own pages read its answers). A preflight is answered before authentication, as
/// browsers send it without credentials; the real request then needs its token as any other.
fn cors(origins: &[axum::http::HeaderValue]) -> Option<CorsLayer> {
    use axum::http::{Method, header};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}
