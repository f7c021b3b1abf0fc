//! The service as a separate process, so it can be killed like a real one.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::harness::{TestCluster, eventually};
use crate::support::TestDatabase;

pub struct ServiceProcess {
    child: Child,
    pub url: String,
    /// A token of user `alice` in the service's database.
    pub token: String,
    port: u16,
    database_url: String,
    kubeconfig: std::path::PathBuf,
    log: std::path::PathBuf,
    /// Further arguments of `serve`.
    args: Vec<String>,
    pub restarts: usize,
}

/// The service as a process on the simulated node's control plane, as its service account (with
/// the install's RBAC), on a new database of `backend`, logging to the cluster's scratch folder;
/// and a client with its token.
pub async fn on_simulated(
    backend: crate::support::Backend,
) -> (TestCluster, TestDatabase, ServiceProcess, reqwest::Client) {
    let cluster = TestCluster::simulated().await;
    cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
    let kubeconfig = cluster.service_account_kubeconfig_file().await;
    let database = TestDatabase::new(backend).await;
    let log = cluster.scratch.path().join("service.log");
    let service = ServiceProcess::start(&database.url, &kubeconfig, &log).await;
    let client = crate::support::client_with_token(&service.token);
    (cluster, database, service, client)
}

impl ServiceProcess {
    /// Starts `submission-helper serve` on a free loopback port, and waits until it answers.
    pub async fn start(database_url: &str, kubeconfig: &Path, log: &Path) -> Self {
        Self::start_with(database_url, kubeconfig, log, &[]).await
    }

    /// As [`ServiceProcess::start`], with further arguments of `serve` (kept across restarts).
    pub async fn start_with(
        database_url: &str,
        kubeconfig: &Path,
        log: &Path,
        args: &[&str],
    ) -> Self {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let store = submission_helper::storage::Store::connect(database_url)
            .await
            .expect("database");
        let (_, token) = store
            .create_token(crate::support::USER, false, false)
            .await
            .expect("token");
        let child = spawn(port, database_url, kubeconfig, log, &args);
        let process = ServiceProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            port,
            database_url: database_url.to_owned(),
            kubeconfig: kubeconfig.to_owned(),
            log: log.to_owned(),
            args,
            restarts: 0,
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.url);
        eventually("the service to answer", Duration::from_secs(60), || async {
            client
                .get(&url)
                .send()
                .await
                .ok()?
                .status()
                .is_success()
                .then_some(())
        })
        .await;
    }

    /// SIGKILL, then a new process on the same port and database.
    pub async fn kill_and_restart(&mut self) {
        self.kill().await;
        self.child = spawn(
            self.port,
            &self.database_url,
            &self.kubeconfig,
            &self.log,
            &self.args,
        );
        self.restarts += 1;
        self.wait_healthy().await;
    }

    /// SIGTERM, then the exit status (or `None` if it did not exit within `deadline`).
    pub async fn terminate(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id()?;
        let _ = Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .status()
            .await;
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// The service's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn spawn(port: u16, database_url: &str, kubeconfig: &Path, log: &Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("service log");
    Command::new(env!("CARGO_BIN_EXE_submission-helper"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the service")
}
