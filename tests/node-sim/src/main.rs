//! node-sim: a simulated Kubernetes node for the end-to-end tests.
//!
//! No kubelet or container runtime runs on the test machines, so this process plays one: it
//! registers a Ready node, binds pods to it, runs each pod's command locally (the image is
//! ignored), reports their status, honours deletion, and serves their logs over HTTPS the way
//! a kubelet does, so the API server's `pods/log` proxy works for real.

mod logs;
mod node;
mod pods;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Parser)]
#[command(
    name = "node-sim",
    about = "A simulated Kubernetes node that runs pods' commands locally"
)]
struct Args {
    /// Kubeconfig of the control plane (default: KUBECONFIG or the standard place).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long, default_value = "sim-node")]
    node_name: String,
    /// Address of the kubelet HTTPS endpoint (logs).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where container logs are kept; payloads run here.
    #[arg(long)]
    work_dir: PathBuf,
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).context("reading the kubeconfig")?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// A TLS acceptor with a self-signed certificate: the API server does not verify a kubelet's
/// certificate unless told to, and in the test cluster it is not.
fn tls() -> anyhow::Result<TlsAcceptor> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(anyhow::Error::msg)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve_logs(listener: TcpListener, tls: TlsAcceptor, store: logs::LogStore) {
    let router = logs::router(store);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (tls, router) = (tls.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(stream).await else {
                return;
            };
            let service = TowerToHyperService::new(router);
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "log connection ended");
            }
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir).context("creating the work directory")?;
    let work_dir = args.work_dir.canonicalize()?;
    let client = client(args.kubeconfig.as_ref()).await?;

    let listener = TcpListener::bind(args.listen).await?;
    let port = listener.local_addr()?.port();
    let store = logs::LogStore::new(work_dir.join("logs"));
    tokio::spawn(serve_logs(listener, tls()?, store.clone()));

    let since = node::register(&client, &args.node_name, port)
        .await
        .context("registering the node")?;
    tokio::spawn(node::heartbeat(
        client.clone(),
        args.node_name.clone(),
        port,
        since,
    ));
    let node = pods::Node::new(client, args.node_name.clone(), store, work_dir);
    let watching = tokio::spawn(node.clone().run());
    println!(
        "node-sim ready node={} kubelet=127.0.0.1:{port}",
        args.node_name
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = watching => {}
    }
    node.kill_all().await;
    Ok(())
}
