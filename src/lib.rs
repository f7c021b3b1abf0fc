//! submission-helper: run batch payloads on Kubernetes over plain HTTP.
//!
//! A submission (an image, a command run with `bash -cl`, a pull secret, a volume claim) is
//! stored first ([`storage`]), then turned into a `batch/v1` Job ([`cluster::manifest`]) that the
//! dispatcher creates; watchers keep its status current; the HTTP layer ([`http`]) only reads and
//! writes the store and asks the cluster for live views and logs. The same binary is also the
//! command-line client of a running service ([`client`]), through its HTTP API only. The
//! command line is [`cli`]'s, the server's options [`config`]'s, and `token` runs in [`token`].

pub mod backoff;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod duration;
pub mod http;
pub mod memory;
pub mod startup;
pub mod storage;
pub mod token;
pub mod webhooks;

use config::ServeArgs;
use startup::Application;

/// `submission-helper serve`: connect to the database and the cluster, then serve until SIGTERM.
/// On SQLite the service holds its database's lock until it exits, so a second one refuses to
/// start (see [`storage::ServiceLock`]).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let _lock = storage::ServiceLock::take(&args.database_url)?;
    let store = storage::Store::connect(&args.database_url).await?;
    let clusters = if args.clusters.clusters.is_empty() {
        let cluster = cluster::Cluster::infer(args.namespace.clone()).await;
        if !cluster.is_configured() {
            tracing::warn!(
                "no cluster configuration found (kubeconfig or in-cluster service account); \
                 submissions are stored and wait until the service is restarted with one"
            );
        }
        cluster::Clusters::from(cluster)
    } else {
        cluster::Clusters::connect(&args.clusters.clusters, args.namespace.clone())
            .await
            .map_err(anyhow::Error::msg)?
    };
    let namespace = clusters.namespace().to_owned();
    let names = clusters.names().join(", ");
    let app = Application::build(settings, store, clusters).await?;
    tracing::info!(address = %app.local_addr()?, namespace, clusters = names, "listening");
    let trimming = tokio::spawn(memory::keep_trimmed());
    let served = app.run_until(startup::shutdown_signal()).await;
    trimming.abort();
    served?;
    Ok(())
}
