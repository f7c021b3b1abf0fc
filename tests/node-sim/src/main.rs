//! node-sim: a simulated Kubernetes node for the end-to-end tests.
//!
//! No kubelet or container runtime runs on the test machines, so this process plays one: it
//! registers a Ready node, binds pods to it (there is no scheduler either), runs each pod's
//! commands locally (the image is ignored), reports their status, honours deletion, and
//! serves their logs over HTTPS the way a kubelet does, so the API server's `pods/log` proxy
//! works for real. It prints `node-sim ready node=NAME kubelet=ADDRESS` once registered.

mod containers;
mod images;
mod kubelet_server;
mod logs;
mod memory;
mod node;
mod pod_status;
mod pods;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    name = "node-sim",
    about = "A simulated Kubernetes node that runs pods' commands locally"
)]
struct Args {
    /// Kubeconfig of the control plane (default: KUBECONFIG, then the usual places).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The name the node registers under.
    #[arg(long, default_value = "sim-node")]
    node_name: String,
    /// Only take pods of this namespace (default: every namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// Address of the kubelet HTTPS endpoint (container logs); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where container logs and process records are kept; payloads run here unless their
    /// container names an existing working directory.
    #[arg(long)]
    work_dir: PathBuf,
    /// Images whose name contains this are missing from their registry: their containers wait
    /// in ErrImagePull / ImagePullBackOff (repeatable).
    #[arg(long = "unpullable-image", default_value = "unpullable")]
    unpullable_images: Vec<String>,
    /// Leave pods of namespaces whose name starts with this to another node (repeatable), so
    /// a test can run a node of its own for its namespace.
    #[arg(long = "exclude-namespace-prefix")]
    excluded_namespaces: Vec<String>,
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
    let groups = containers::ProcessGroups::new(work_dir.join("processes"))
        .context("creating the process records directory")?;
    groups.kill_leftovers();
    let client = client(args.kubeconfig.as_ref()).await?;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let kubelet = listener.local_addr()?;
    let store = logs::LogStore::new(work_dir.join("logs"));
    let tls = kubelet_server::tls_acceptor().context("making the kubelet certificate")?;
    tokio::spawn(kubelet_server::serve(listener, tls, store.clone()));

    let health = node::Health::default();
    let registration = node::Registration::register(
        client.clone(),
        args.node_name.clone(),
        kubelet.port(),
        health.clone(),
    )
    .await
    .context("registering the node")?;
    let (health_changed, health_changes) = tokio::sync::watch::channel(());
    tokio::spawn(registration.heartbeat(health_changes));

    let settings = pods::Settings {
        name: args.node_name.clone(),
        namespace: args.namespace.clone(),
        excluded_namespaces: args.excluded_namespaces.clone(),
        work_dir,
        registry: images::Registry {
            unpullable: args.unpullable_images.clone(),
        },
    };
    let node = pods::Node::new(client, settings, store, groups, health.clone());
    let watching = tokio::spawn(node.clone().run());
    println!("node-sim ready node={} kubelet={kubelet}", args.node_name);

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut fail = signal(SignalKind::user_defined1())?;
    let mut recover = signal(SignalKind::user_defined2())?;
    let mut watching = watching;
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = &mut watching => { tracing::error!("the pod watch ended"); break }
            // SIGUSR1: the node fails (NotReady, its processes lost); SIGUSR2: it recovers.
            _ = fail.recv() => {
                health.set_ready(false);
                node.lose_all_processes();
                health_changed.send_replace(());
                println!("node-sim not-ready node={}", args.node_name);
            }
            _ = recover.recv() => {
                health.set_ready(true);
                health_changed.send_replace(());
                println!("node-sim ready-again node={}", args.node_name);
            }
        }
    }
    node.stop();
    tracing::info!("stopped");
    Ok(())
}
