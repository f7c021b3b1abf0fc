//! Builds the application from its parts and runs it: the HTTP server, the dispatcher, the
//! watchers, the webhook sender and the database upkeep. `build` binds the listener and returns, so tests start the
//! real server on port 0 and learn the port it got.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cluster::cancels::Cancels;
use crate::cluster::manifest::PodSettings;
use crate::cluster::{Clusters, controller, dispatch};
use crate::domain::SubmitDefaults;
use crate::http::database_metrics::DatabaseMetrics;
use crate::http::event_stream::EventStreams;
use crate::http::follows::FollowLimits;
use crate::http::rate_limit::RateLimiter;
use crate::http::registry::Metrics;
use crate::http::request_metrics::HttpMetrics;
use crate::http::{self, Context, Parts};
use crate::storage::Store;
use crate::webhooks::metrics::WebhookMetrics;

/// How long in-flight requests (log follows included) may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Unknown tokens a client address may send a minute (in bursts of as many) before its
/// requests are refused without a database lookup, until its budget refills.
const UNKNOWN_TOKENS_PER_MINUTE: u32 = 120;

/// Everything `build` needs, resolved from the command line (or by a test).
pub struct Settings {
    pub listen: SocketAddr,
    pub defaults: SubmitDefaults,
    /// What every payload pod gets from the server (run-as user and group).
    pub pods: PodSettings,
    /// Requests a minute per token; 0 for no limit.
    pub rate_limit_per_minute: u32,
    /// Whether `/metrics` answers without a token.
    pub public_metrics: bool,
    pub log_wait: Duration,
    /// How long a request may take (log follows excepted).
    pub request_timeout: Duration,
    /// Log follows each token user may keep open at once; 0 for no cap.
    pub follows_per_user: usize,
    /// How long a pod may be stuck before its start before its submission fails.
    pub pending_timeout: Duration,
    /// How long the cluster may fail to answer before it counts as unreachable.
    pub cluster_unreachable_after: Duration,
    /// How long a cluster may fail to answer before its live submissions are run again in
    /// another (one that answers).
    pub cluster_lost_after: Duration,
    /// How a submission that names no cluster is placed among several.
    pub placement: crate::domain::placement::Placement,
    /// Caps of active Jobs, by cluster name (`--cluster-capacity`).
    pub cluster_capacity: std::collections::BTreeMap<String, i64>,
    /// What the dispatcher obeys: each user's limit of active Jobs.
    pub dispatch: dispatch::Limits,
    /// Web origins whose pages may call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// How event streams poll for other replicas' changes and keep quiet connections alive.
    pub event_streams: EventStreams,
    /// How long state-change events are kept for streams to resume from.
    pub event_retention: Duration,
    /// How precisely a token's last use is recorded: at most one write per token this often.
    pub token_use_resolution: Duration,
    /// How notifications are sent to submissions' `notify_url` (the allowed hosts are taken
    /// from `defaults.allowed.notify_hosts`).
    pub webhooks: crate::webhooks::Settings,
    /// Whether each answered request writes a line at `info`.
    pub log_requests: bool,
    /// The OpenID Connect issuer whose access tokens are accepted beside our own; none by
    /// default.
    pub oidc: Option<crate::http::oidc::Settings>,
    /// How Jobs are submitted through Kueue; `None` (the default) to create runnable Jobs.
    pub kueue: Option<crate::cluster::kueue_settings::KueueSettings>,
}

impl Default for Settings {
    /// `submission-helper serve` with no flags: its flags' defaults are taken from here.
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            defaults: SubmitDefaults::default(),
            pods: PodSettings::default(),
            rate_limit_per_minute: 6000,
            public_metrics: false,
            log_wait: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            follows_per_user: 20,
            pending_timeout: Duration::from_secs(600),
            cluster_unreachable_after: crate::cluster::reachability::UNREACHABLE_AFTER,
            cluster_lost_after: crate::cluster::reachability::LOST_AFTER,
            placement: Default::default(),
            cluster_capacity: Default::default(),
            dispatch: dispatch::Limits::default(),
            cors_origins: Vec::new(),
            event_streams: EventStreams::default(),
            // A client may resume an event stream up to a week after it lost it.
            event_retention: Duration::from_secs(7 * 24 * 3600),
            token_use_resolution: Duration::from_secs(60),
            webhooks: crate::webhooks::Settings::default(),
            log_requests: true,
            oidc: None,
            kueue: None,
        }
    }
}

pub struct Application {
    listener: TcpListener,
    context: Context,
    pods: PodSettings,
    pending_timeout: Duration,
    dispatch_limits: dispatch::Limits,
    event_retention: Duration,
    webhooks: crate::webhooks::Settings,
    /// What the webhook sender counts, for `/metrics`.
    webhook_metrics: Arc<WebhookMetrics>,
    /// The background deletion of cancelled submissions' Jobs, started by `run_until`.
    cancels: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Application {
    /// Binds the listener. Nothing runs until [`Application::run_until`].
    /// `clusters`: one [`Cluster`], or the [`Clusters`] of `--cluster`.
    pub async fn build(
        mut settings: Settings,
        store: Store,
        clusters: impl Into<Clusters>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await?;
        let clusters = clusters
            .into()
            .map(|cluster| {
                let capacity = settings.cluster_capacity.get(cluster.name()).copied();
                match &settings.kueue {
                    Some(kueue) => cluster.with_kueue(kueue.clone()),
                    None => cluster,
                }
                .with_reachability(
                    settings.cluster_unreachable_after,
                    settings.cluster_lost_after,
                )
                .with_capacity(capacity)
            })
            .with_placement(settings.placement);
        // Jobs created in another namespace before a restart are followed to their end there.
        let former = store
            .live_elsewhere(clusters.namespace())
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "could not read where earlier Jobs live; following only this namespace");
                Vec::new()
            });
        let clusters = clusters.following_also(&former);
        settings.defaults.clusters = clusters.names();
        let webhooks = crate::webhooks::Settings {
            allowed_hosts: settings.defaults.allowed.notify_hosts.clone(),
            ..settings.webhooks
        };
        let shutdown = CancellationToken::new();
        let (cancels, cancel_worker) = if clusters.is_configured() {
            let (cancels, worker) =
                Cancels::start(clusters.clone(), store.clone(), shutdown.clone());
            let worker: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(worker);
            (cancels, Some(worker))
        } else {
            (Cancels::none(), None)
        };
        let oidc = match settings.oidc {
            Some(oidc) => Some(Arc::new(crate::http::oidc::Verifier::new(oidc)?)),
            None => None,
        };
        let http_metrics = Arc::new(HttpMetrics::default());
        let webhook_metrics = Arc::new(WebhookMetrics::default());
        let metrics = Arc::new(Metrics::new(
            DatabaseMetrics::new(store.clone()),
            &http_metrics,
            &clusters,
            &webhook_metrics,
        ));
        let context = Context::new(Parts {
            store,
            clusters,
            defaults: Arc::new(settings.defaults),
            user_limit: settings.dispatch.per_user,
            log_wait: settings.log_wait,
            request_timeout: settings.request_timeout,
            shutdown,
            rate_limit: RateLimiter::new(settings.rate_limit_per_minute),
            unknown_tokens: RateLimiter::new(UNKNOWN_TOKENS_PER_MINUTE),
            public_metrics: settings.public_metrics,
            metrics,
            http_metrics,
            follows: FollowLimits::new(settings.follows_per_user),
            event_streams: settings.event_streams,
            event_feed: crate::http::event_feed::EventFeed::new(settings.event_streams.feed_buffer),
            cancels,
            cors_origins: Arc::new(settings.cors_origins),
            token_use: crate::http::token_use::TokenUse::new(settings.token_use_resolution),
            log_requests: settings.log_requests,
            oidc,
        });
        Ok(Application {
            listener,
            context,
            pods: settings.pods,
            pending_timeout: settings.pending_timeout,
            dispatch_limits: settings.dispatch,
            event_retention: settings.event_retention,
            webhooks,
            webhook_metrics,
            cancels: cancel_worker,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests for a bounded time.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Application {
            listener,
            context,
            pods,
            pending_timeout,
            dispatch_limits,
            event_retention,
            webhooks,
            webhook_metrics,
            cancels,
        } = self;
        let mut background = JoinSet::new();
        if let Some(cancels) = cancels {
            background.spawn(cancels);
        }
        background.spawn(context.store.clone().keep_wal_bounded());
        background.spawn(context.store.clone().keep_events_pruned(event_retention));
        background.spawn(
            context
                .store
                .clone()
                .watch_other_replicas(context.event_streams.poll),
        );
        background.spawn(context.event_feed.clone().run(context.store.clone()));
        background.spawn(context.metrics.keep_counts_saved());
        background.spawn(crate::webhooks::run(
            context.store.clone(),
            webhooks,
            webhook_metrics,
        ));
        if let Some(oidc) = &context.oidc {
            background.spawn(oidc.keep_keys_fresh());
        }
        if context.clusters.is_configured() {
            let handles = context.clusters.iter().chain(context.clusters.former());
            for cluster in handles.filter(|c| c.is_configured()) {
                let (_, controller) = controller::start(
                    cluster.clone(),
                    context.store.clone(),
                    context.cancels.clone(),
                    pending_timeout,
                );
                background.spawn(controller);
            }
            background.spawn(dispatch::run(
                context.clusters.clone(),
                context.store.clone(),
                pods,
                dispatch_limits,
            ));
        }
        let stopping = context.shutdown.clone();
        let app = http::router(context).into_make_service_with_connect_info::<SocketAddr>();

        let signal = stopping.clone();
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            signal.cancel();
        });
        let served = tokio::spawn(async move { served.await });
        let drained = async {
            stopping.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::pin!(served);
        let result = tokio::select! {
            result = &mut served => result.unwrap_or_else(|error| Err(std::io::Error::other(error))),
            () = drained => {
                tracing::warn!("requests still open after the drain period; closing them");
                served.abort();
                Ok(())
            }
        };
        background.shutdown().await;
        result
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
