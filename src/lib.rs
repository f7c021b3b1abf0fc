//! submission-helper: run batch payloads on Kubernetes over plain HTTP.
//!
//! A submission (an image, a command run with `bash -cl`, a pull secret, a volume claim) is
//! stored first ([`storage`]), then turned into a `batch/v1` Job ([`cluster::manifest`]) that the
//! dispatcher creates; watchers keep its status current; the HTTP layer ([`http`]) only reads and
//! writes the store and asks the cluster for live views and logs. The same binary is also the
//! command-line client of a running service ([`client`]), through its HTTP API only.

pub mod client;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod duration;
pub mod http;
pub mod startup;
pub mod storage;
pub mod webhooks;

use config::{ServeArgs, TokenArgs, TokenCommand};
use startup::{Application, Settings};

/// `submission-helper serve`: connect to the database and the cluster, then serve until SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let defaults = args.submit_defaults().map_err(anyhow::Error::msg)?;
    let store = storage::Store::connect(&args.database_url).await?;
    let cluster = cluster::Cluster::infer(args.namespace.clone()).await;
    if !cluster.is_configured() {
        tracing::warn!(
            "no cluster configuration found (kubeconfig or in-cluster service account); \
             submissions are stored and wait until the service is restarted with one"
        );
    }
    let settings = Settings {
        listen: args.listen,
        defaults,
        pods: args.pod_settings(),
        rate_limit_per_minute: args.rate_limit_per_minute,
        public_metrics: args.public_metrics,
        log_wait: args.log_wait(),
        request_timeout: args.request_timeout(),
        follows_per_user: args.follows_per_token_user,
        pending_timeout: args.pending_timeout()?,
        dispatch: cluster::dispatch::Limits {
            per_user: (args.max_concurrent > 0).then_some(args.max_concurrent),
        },
        cors_origins: args.cors_origins()?,
        event_streams: http::events::EventStreams::default(),
        event_retention: args.event_retention()?,
        webhooks: args.webhook_settings()?,
        oidc: args.oidc.settings()?,
        ..Settings::default()
    };
    let app = Application::build(settings, store, cluster.clone()).await?;
    tracing::info!(address = %app.local_addr()?, namespace = cluster.namespace(), "listening");
    app.run_until(startup::shutdown_signal()).await?;
    Ok(())
}

/// `submission-helper token ...`: create, list and revoke API tokens in the service's database.
pub async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let store = storage::Store::connect(&args.database_url).await?;
    match args.command {
        TokenCommand::Create {
            user,
            admin,
            delegate,
            max_concurrent,
            expires_in,
            description,
        } => {
            let user = domain::parse_user_name(&user)
                .map_err(|reason| anyhow::anyhow!("--user {reason}"))?;
            if max_concurrent == Some(0) {
                anyhow::bail!(
                    "--max-concurrent must be at least 1 (leave it out for the server's)"
                );
            }
            let expires_at = expires_in
                .map(|expires_in| http::tokens::expiry_after(&expires_in, jiff::Timestamp::now()))
                .transpose()
                .map_err(|reason| anyhow::anyhow!("--expires-in {reason}"))?;
            let (token, secret) = store
                .create_token_with(&storage::NewToken {
                    user,
                    admin,
                    delegate,
                    max_concurrent,
                    expires_at,
                    description,
                })
                .await?;
            eprintln!(
                "created token {} for user {} (admin: {}, delegate: {}, max concurrent: {}, expires: {}); it is shown only now:",
                token.id,
                token.user,
                token.admin,
                token.delegate,
                token
                    .max_concurrent
                    .map_or("the server's".to_owned(), |limit| limit.to_string()),
                token.expires_at.as_deref().unwrap_or("never")
            );
            println!("{secret}");
            if let Some(webhook_secret) = store.webhook_secret(&token.id).await? {
                eprintln!(
                    "webhook signing secret of this token (for receivers of notify_url; shown only now): {webhook_secret}"
                );
            }
        }
        TokenCommand::List => {
            println!(
                "ID\tUSER\tADMIN\tDELEGATE\tMAX-CONCURRENT\tCREATED\tEXPIRES\tLAST-USED\tREVOKED\tDESCRIPTION"
            );
            for token in store.tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.user,
                    token.admin,
                    token.delegate,
                    token
                        .max_concurrent
                        .map_or("-".to_owned(), |limit| limit.to_string()),
                    token.created_at,
                    token.expires_at.as_deref().unwrap_or("never"),
                    token.last_used_at.as_deref().unwrap_or("-"),
                    token.revoked_at.as_deref().unwrap_or("-"),
                    token.description.as_deref().unwrap_or("-")
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(&id).await? {
                anyhow::bail!("no active token with id {id}");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
