//! The HTTP layer: routes, the shared context handed to handlers, the OpenAPI document.
//!
//! Routes are registered through utoipa-axum's `OpenApiRouter`, so a route cannot exist without
//! its documentation, and `/openapi.json` is always the API that is served.

pub mod auth;
mod cancel;
mod cluster;
pub mod error;
pub mod event_feed;
pub mod events;
mod extract;
pub mod follows;
mod health;
mod logs;
pub mod metrics;
pub mod oidc;
pub mod rate_limit;
pub mod request_metrics;
pub mod submissions;
pub mod submit;
pub mod tes;
pub mod tokens;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::cluster::Cluster;
use crate::domain::SubmitDefaults;
use crate::storage::Store;
use error::ApiError;

/// What every handler can reach. Cheap to clone: the pool and the client are shared handles.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub cluster: Cluster,
    pub defaults: Arc<SubmitDefaults>,
    /// How long a log follow waits for a pod to start.
    pub log_wait: Duration,
    pub request_timeout: Duration,
    /// Cancelled when the service shuts down, so log follows end cleanly instead of being cut.
    pub shutdown: CancellationToken,
    /// Requests a minute per token.
    pub rate_limit: rate_limit::RateLimiter,
    /// Unknown tokens a minute per client address; past it, that address's requests are
    /// refused before any token lookup.
    pub unknown_tokens: rate_limit::RateLimiter,
    /// Whether `/metrics` answers without a token.
    pub public_metrics: bool,
    /// Log follows and event streams each token user may keep open at once.
    pub follows: follows::FollowLimits,
    /// How event streams wait for changes and keep quiet connections alive.
    pub event_streams: events::EventStreams,
    /// New events, read once for every stream of the process.
    pub event_feed: event_feed::EventFeed,
    /// Where cancels leave the Jobs to delete in the background.
    pub cancels: crate::cluster::cancels::Cancels,
    /// Web origins whose pages may call the API (CORS); empty: none but our own.
    pub cors_origins: Arc<Vec<axum::http::HeaderValue>>,
    /// Counts of finished submissions, recounted in the background.
    pub final_counts: metrics::FinalCounts,
    /// Requests by route and status, for `/metrics`.
    pub http_metrics: Arc<request_metrics::HttpMetrics>,
    /// Webhook attempts by outcome, counted by this process's sender, for `/metrics`.
    pub webhook_metrics: Arc<crate::webhooks::metrics::WebhookMetrics>,
    /// When tokens were last used, written at most once a minute per token.
    pub token_use: auth::TokenUse,
    /// The OpenID Connect issuer whose access tokens are accepted too, if one is configured.
    pub oidc: Option<Arc<oidc::Verifier>>,
}

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

/// The routes and their documentation, without state (also used to print the document).
fn api() -> OpenApiRouter<Context> {
    let batch = OpenApiRouter::new()
        .routes(routes!(submit::submit_batch))
        .layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT))
        .layer(tower::limit::ConcurrencyLimitLayer::new(BATCHES_AT_ONCE));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(submissions::list, submit::submit))
        .routes(routes!(submissions::get))
        .routes(routes!(submissions::pods))
        .routes(routes!(logs::logs))
        .routes(routes!(cancel::cancel))
        .routes(routes!(cancel::cancel_matching))
        .routes(routes!(events::events))
        .routes(routes!(cluster::jobs))
        .routes(routes!(cluster::pods))
        .routes(routes!(cluster::submission_events))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .layer(DefaultBodyLimit::max(SUBMISSION_BODY_LIMIT))
        .merge(batch)
}

/// The OpenAPI document of the served API, as committed under `openapi/`.
pub fn openapi_json() -> String {
    let (_, openapi) = api().split_for_parts();
    let mut json = openapi.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The whole application: routes, documentation, request ids, tracing, metrics and CORS.
pub fn router(context: Context) -> Router {
    let (router, openapi) = api().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    let cors = cors(&context.cors_origins);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(ui::router())
        .merge(tes::routes::router())
        .fallback(|| async { ApiError::NotFound("there is nothing at this path".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this path does not answer to that method".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            context.request_timeout,
            time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            context.http_metrics.clone(),
            request_metrics::record,
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
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
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

/// Answers a request that takes longer than `limit` with a 503 problem, dropping the handler
/// (a statement it had begun is rolled back, so nothing half-done is stored). A log follow is
/// exempt: it waits for a pod and then streams for as long as the payload runs; so is the event
/// stream, which runs until its client leaves.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let follows = request.uri().path().ends_with("/logs")
        && request.uri().query().is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.strip_prefix("follow=")
                    .is_some_and(|value| !matches!(value, "false" | "0" | ""))
            })
        });
    if follows || request.uri().path() == "/v1/events" {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TookTooLong(limit).into_response(),
    }
}
