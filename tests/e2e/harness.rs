//! A namespace per test, the shipped RBAC applied in it, and the service started with that
//! service account's token, talking to the control plane named by `SH_TEST_KUBECONFIG`: the
//! real node's when `tests/real-node.sh` runs one (`SH_TEST_REAL_NODE`), else one whose pods the
//! simulated node runs. Tests that need the simulated node (a node lost on demand, a log read
//! that hangs) ask for it, on its own control plane (`SH_TEST_SIMULATED_KUBECONFIG`) when the
//! real node has the other. Shared by the `e2e`, `cli` and `faults` test binaries; each uses
//! part of it.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use submission_helper::cluster::Cluster;
use submission_helper::domain::SubmitDefaults;

use crate::payload_node::{RealNode, create_ntuples_volume, create_registry_secret};
use crate::support::{Backend, TestApp, TestDatabase, eventually_seen};

pub use crate::payload_node::PAYLOAD_IMAGE;
pub use crate::support::eventually;

/// Every test that needs the control plane runs on both databases, and is left out of a plain
/// `cargo test` (reported as ignored, never passed): `tests/run.sh` starts the control plane and
/// runs them with `--include-ignored`, and then a missing control plane fails them.
#[macro_export]
macro_rules! on_the_cluster {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            #[ignore = "needs the local control plane: run tests/run.sh"]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            #[ignore = "needs the local control plane and Postgres: run tests/run.sh"]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}

fn kubeconfig_path() -> PathBuf {
    match std::env::var("SH_TEST_KUBECONFIG") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "SH_TEST_KUBECONFIG is not set: this test needs the local control plane; run it with tests/run.sh"
        ),
    }
}

/// The control plane whose pods the simulated node runs: its own when the real node runs the
/// other's (`tests/run.sh`), else the only one.
fn simulated_kubeconfig_path() -> PathBuf {
    match std::env::var("SH_TEST_SIMULATED_KUBECONFIG") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ if RealNode::from_env().is_some() => panic!(
            "SH_TEST_SIMULATED_KUBECONFIG is not set: this test needs the simulated node, whose control plane is not the real node's; run it with tests/run.sh"
        ),
        _ => kubeconfig_path(),
    }
}

/// What the tests' service gives a payload that asks for nothing: little, so that many fit on
/// the real node's 2 cores at once (the helper's own defaults ask for a core and 4000M each).
pub fn test_defaults() -> SubmitDefaults {
    let mut defaults = SubmitDefaults::default();
    defaults.job.cpus = Some("10m".into());
    defaults.job.memory = Some("16Mi".into());
    defaults
}

async fn client_from(kubeconfig: Kubeconfig) -> Client {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// A namespace of our own on the test control plane.
pub struct TestCluster {
    pub admin: Client,
    pub namespace: String,
    kubeconfig: PathBuf,
    pub scratch: tempfile::TempDir,
    /// The real node the namespace's pods run on; `None` on the simulated node.
    pub real_node: Option<RealNode>,
    /// The folder the payloads share with the test, in `scratch`.
    volume: PathBuf,
}

/// Where payloads see the folder they share with their test, on the real node: the
/// namespace's `ntuples-claim` volume, mounted at the service's default mount path.
const VOLUME_IN_PAYLOADS: &str = "/ntuples";

/// A file in the shared folder while the test runs: gates stop waiting once it is gone.
const TEST_RUNNING: &str = ".test-running";

impl TestCluster {
    /// A fresh namespace on the control plane named by `SH_TEST_KUBECONFIG` (panics without
    /// one), ready for its node: on the real node, with the registry secret and the
    /// `ntuples-claim` volume the seed's users create.
    pub async fn new() -> Self {
        Self::create(kubeconfig_path(), "e2e-", RealNode::from_env()).await
    }

    /// A fresh namespace whose pods the simulated node runs: for what a real node cannot do on
    /// demand (be lost, hang a log read), or takes too long for (hundreds of pods at once).
    pub async fn simulated() -> Self {
        Self::create(simulated_kubeconfig_path(), "e2e-", None).await
    }

    /// A fresh `lone-` namespace on the simulated node's control plane: the shared simulated
    /// node leaves it alone (`tests/run.sh`), for a test that runs a node of its own, or none.
    pub async fn lone() -> Self {
        Self::create(simulated_kubeconfig_path(), "lone-", None).await
    }

    /// The same namespace on the other control plane (the simulated node's), for a service
    /// with two clusters; panics unless there are two.
    pub async fn beside(&self) -> Self {
        let other = simulated_kubeconfig_path();
        assert_ne!(
            other, self.kubeconfig,
            "this test needs two control planes: SH_TEST_SIMULATED_KUBECONFIG must name another than SH_TEST_KUBECONFIG (tests/run.sh sets both)"
        );
        Self::create_named(other, self.namespace.clone(), None).await
    }

    async fn create(kubeconfig: PathBuf, prefix: &str, real_node: Option<RealNode>) -> Self {
        let namespace = format!(
            "{prefix}{}",
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        );
        Self::create_named(kubeconfig, namespace, real_node).await
    }

    async fn create_named(
        kubeconfig: PathBuf,
        namespace: String,
        real_node: Option<RealNode>,
    ) -> Self {
        let admin = client_from(Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig")).await;
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        let object: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}}))
                .expect("namespace");
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("create namespace");
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &namespace);
        eventually(
            "the namespace's default service account",
            Duration::from_secs(60),
            || async { accounts.get_opt("default").await.ok().flatten() },
        )
        .await;
        let scratch = tempfile::tempdir().expect("scratch directory");
        let cluster = TestCluster {
            admin,
            namespace,
            kubeconfig,
            volume: scratch.path().join("ntuples"),
            scratch,
            real_node,
        };
        std::fs::create_dir(cluster.volume()).expect("shared folder");
        std::fs::write(cluster.volume().join(TEST_RUNNING), b"").expect("test-running marker");
        if let Some(node) = &cluster.real_node {
            create_registry_secret(
                &cluster.kubeconfig,
                &cluster.namespace,
                "sh-k8s-registry-secret",
                node,
                &node.password,
            );
            create_ntuples_volume(
                &cluster.admin,
                &cluster.kubeconfig,
                &cluster.namespace,
                cluster.volume(),
            )
            .await;
        }
        cluster
    }

    /// The folder the payloads share with the test (this machine's side of it): the
    /// `ntuples-claim` volume on the real node.
    pub fn volume(&self) -> &std::path::Path {
        &self.volume
    }

    /// Where the payloads see `name` of the shared folder: in the volume's mount on the real
    /// node, at this machine's path on the simulated one (which runs them here).
    fn in_payloads(&self, name: &str) -> String {
        match self.real_node {
            Some(_) => format!("{VOLUME_IN_PAYLOADS}/{name}"),
            None => self.volume.join(name).display().to_string(),
        }
    }

    /// The folder `tests/control-plane.sh` keeps this namespace's control plane in (its
    /// kubeconfig is there), for tests that stop and start its API server.
    pub fn control_plane_dir(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .expect("the kubeconfig is in the control plane's folder")
            .to_owned()
    }

    /// The admin kubeconfig of the test control plane.
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// Applies an RBAC manifest into our namespace with kubectl, as an operator would.
    pub fn apply_rbac(&self, manifest: &str) {
        let manifest = manifest.replace(
            "namespace: submission-helper",
            &format!("namespace: {}", self.namespace),
        );
        let file = self.scratch.path().join("rbac.yaml");
        std::fs::write(&file, manifest).expect("write manifest");
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "-f"])
            .arg(&file)
            .output()
            .expect("run kubectl");
        assert!(
            output.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A client that acts as the `submission-helper` service account (token from its secret).
    pub async fn service_account_client(&self) -> Client {
        client_from(self.service_account_kubeconfig().await).await
    }

    /// A kubeconfig for the `submission-helper` service account, written to a file (for the
    /// service run as a process), in our namespace.
    pub async fn service_account_kubeconfig_file(&self) -> PathBuf {
        let mut kubeconfig = self.service_account_kubeconfig().await;
        for context in &mut kubeconfig.contexts {
            if let Some(context) = context.context.as_mut() {
                context.namespace = Some(self.namespace.clone());
            }
        }
        let file = self.scratch.path().join("service-account.kubeconfig");
        std::fs::write(&file, serde_json::to_vec(&kubeconfig).expect("json"))
            .expect("write kubeconfig");
        file
    }

    /// A kubeconfig with a token of the `submission-helper` service account, asked for through
    /// the TokenRequest API (current servers create no long-lived token secrets).
    async fn service_account_kubeconfig(&self) -> Kubeconfig {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), &self.namespace);
        let request: TokenRequest = serde_json::from_value(serde_json::json!({
            "spec": {"audiences": [], "expirationSeconds": 7200}
        }))
        .expect("token request");
        let token = eventually(
            "a token of the service account",
            Duration::from_secs(60),
            || async {
                let answer = accounts
                    .create_token_request("submission-helper", &PostParams::default(), &request)
                    .await
                    .ok()?;
                answer.status.map(|status| status.token)
            },
        )
        .await;
        let mut kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        for user in &mut kubeconfig.auth_infos {
            if let Some(auth) = user.auth_info.as_mut() {
                *auth =
                    serde_json::from_value(serde_json::json!({"token": token})).expect("auth info");
            }
        }
        kubeconfig
    }

    /// The service, as the shipped service account, in our namespace (its requests to the
    /// API server counted in its `/metrics`, as in a real deployment).
    pub async fn spawn_service(&self, backend: Backend) -> TestApp {
        self.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
        TestApp::builder()
            .with_database(TestDatabase::new(backend).await)
            .with_cluster(self.service_account_cluster().await)
            .with_defaults(test_defaults())
            .spawn()
            .await
    }

    /// The service account's view of our namespace, built as the service builds its own.
    pub async fn service_account_cluster(&self) -> Cluster {
        Cluster::from_config(self.service_account_config().await, self.namespace.clone())
    }

    /// How the service reaches the API server as the service account.
    pub async fn service_account_config(&self) -> Config {
        Config::from_custom_kubeconfig(
            self.service_account_kubeconfig().await,
            &KubeConfigOptions::default(),
        )
        .await
        .expect("service account config")
    }

    pub async fn spawn_service_as(&self, backend: Backend, client: Client) -> TestApp {
        self.spawn_service_on(TestDatabase::new(backend).await, client)
            .await
    }

    /// The service on a given database, e.g. the one a stopped service used.
    pub async fn spawn_service_on(&self, database: TestDatabase, client: Client) -> TestApp {
        let cluster = Cluster::new(client, self.namespace.clone());
        TestApp::builder()
            .with_database(database)
            .with_cluster(cluster)
            .with_defaults(test_defaults())
            .spawn()
            .await
    }

    /// The service as the shipped service account, with settings changed by `tune` (from
    /// [`test_defaults`]).
    pub async fn spawn_service_tuned(
        &self,
        backend: Backend,
        tune: impl FnOnce(&mut submission_helper::startup::Settings),
    ) -> TestApp {
        self.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
        let cluster = self.service_account_cluster().await;
        TestApp::builder()
            .with_database(TestDatabase::new(backend).await)
            .with_cluster(cluster)
            .with_settings(|settings| {
                settings.defaults = test_defaults();
                tune(settings);
            })
            .spawn()
            .await
    }

    /// The service over two clusters: this one, named `onsite`, then `cloud`, the same
    /// namespace in another control plane ([`TestCluster::beside`]); each as its shipped
    /// service account, on `database`, placing as `placement`, with settings changed by
    /// `tune`.
    pub async fn spawn_service_over(
        &self,
        cloud: &TestCluster,
        database: TestDatabase,
        placement: submission_helper::domain::placement::Placement,
        tune: impl FnOnce(&mut submission_helper::startup::Settings),
    ) -> TestApp {
        for cluster in [self, cloud] {
            cluster.apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
        }
        let configs = (
            self.service_account_config().await,
            cloud.service_account_config().await,
        );
        self.spawn_service_over_configs(&configs, database, placement, tune)
            .await
    }

    /// As [`TestCluster::spawn_service_over`], with the service account's configurations of
    /// both clusters given (RBAC applied before): a service restarted while a cluster's API
    /// server is down, which could not be asked for a token.
    pub async fn spawn_service_over_configs(
        &self,
        (onsite, cloud): &(Config, Config),
        database: TestDatabase,
        placement: submission_helper::domain::placement::Placement,
        tune: impl FnOnce(&mut submission_helper::startup::Settings),
    ) -> TestApp {
        let clusters = submission_helper::cluster::Clusters::new(
            Cluster::from_config(onsite.clone(), self.namespace.clone()).named("onsite"),
            vec![Cluster::from_config(cloud.clone(), self.namespace.clone()).named("cloud")],
            placement,
        );
        TestApp::builder()
            .with_database(database)
            .with_clusters(clusters)
            .with_settings(|settings| {
                settings.defaults = test_defaults();
                settings.placement = placement;
                tune(settings);
            })
            .spawn()
            .await
    }

    /// A client for an API server that does not answer (a closed port on loopback).
    pub async fn unreachable_client(&self) -> Client {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        let mut kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        for cluster in &mut kubeconfig.clusters {
            if let Some(cluster) = cluster.cluster.as_mut() {
                cluster.server = Some(format!("https://127.0.0.1:{port}"));
            }
        }
        client_from(kubeconfig).await
    }

    /// How many `K` objects (Jobs, pods) each submission has in our namespace, by its id label.
    pub async fn count_per_submission<K>(&self) -> BTreeMap<String, usize>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.admin.clone(), &self.namespace);
        let listed = api
            .list(&kube::api::ListParams::default().labels("app=submission-helper"))
            .await
            .expect("list");
        let mut counts = BTreeMap::new();
        for object in &listed.items {
            let labels = object.meta().labels.as_ref();
            let id = labels.and_then(|labels| labels.get("submission-helper.io/submission-id"));
            *counts.entry(id.cloned().unwrap_or_default()).or_default() += 1;
        }
        counts
    }

    /// A file the payloads wait for: the test decides when they go on.
    pub fn gate(&self, name: &str) -> Gate {
        Gate {
            file: self.volume.join(name),
            in_payloads: self.in_payloads(name),
            test_running: self.in_payloads(TEST_RUNNING),
        }
    }

    /// A file each payload appends a line to when it runs: what really ran, counted apart from
    /// the Jobs and pods the service and the cluster say exist.
    pub fn ledger(&self, name: &str) -> Ledger {
        Ledger {
            file: self.volume.join(name),
            in_payloads: self.in_payloads(name),
        }
    }
}

/// Where payloads record that they ran, in the folder they share with the test.
pub struct Ledger {
    file: PathBuf,
    in_payloads: String,
}

impl Ledger {
    /// A payload that records `tag` once each time it runs. Lines this short are appended
    /// whole even when many payloads write at once (`O_APPEND`).
    pub fn record_command(&self, tag: &str) -> String {
        format!("echo '{tag}' >> '{}'", self.in_payloads)
    }

    /// The tags recorded, in the order the payloads recorded them.
    pub fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }

    /// How many times each tag was recorded.
    pub fn runs(&self) -> BTreeMap<String, usize> {
        let mut runs = BTreeMap::new();
        for tag in self.lines() {
            *runs.entry(tag).or_default() += 1;
        }
        runs
    }
}

/// A file a payload waits for (`while [ ! -e $GATE ]`), created by the test to let it go on.
pub struct Gate {
    file: PathBuf,
    in_payloads: String,
    /// The marker that exists while the test runs.
    test_running: String,
}

impl Gate {
    pub fn open(&self) {
        std::fs::write(&self.file, b"go").expect("open gate");
    }

    /// A shell snippet that blocks until the gate is opened, and ends the payload at once on
    /// SIGTERM (a pod's deletion), as a payload that handles it does: without a handler, bash
    /// as a container's first process ignores SIGTERM, and its pod would take the whole grace
    /// period to go. It replaces any TERM trap set before it: see [`Gate::wait_loop`].
    pub fn wait_command(&self) -> String {
        format!("trap 'exit 143' TERM; {}", self.wait_loop())
    }

    /// A shell loop that blocks until the gate is opened, or the test is over (its marker in
    /// the shared folder is gone), so no payload outlives its test; it leaves signals alone.
    pub fn wait_loop(&self) -> String {
        format!(
            "while [ ! -e '{}' ] && [ -e '{}' ]; do sleep 0.05; done",
            self.in_payloads, self.test_running
        )
    }
}

/// Polls a submission until it is in one of `until`, recording each state seen on the way.
pub async fn follow_states(app: &TestApp, id: &str, until: &[&str]) -> (Value, Vec<String>) {
    let path = format!("/v1/submissions/{id}");
    let seen: RefCell<Vec<String>> = RefCell::default();
    let what = format!("{id} to reach one of {until:?}");
    let submission = eventually_seen(&what, Duration::from_secs(90), || async {
        let submission: Value = app.get(&path).await.json().await.expect("submission");
        let state = submission["state"].as_str().unwrap_or_default().to_owned();
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if until.contains(&state.as_str()) {
            return Ok(submission);
        }
        Err(format!("states seen: {seen:?}; last: {submission}"))
    })
    .await;
    (submission, seen.into_inner())
}

/// A submission's id.
pub fn id(submission: &Value) -> String {
    submission["id"].as_str().expect("id").to_owned()
}

/// Submits a payload that runs until `gate` opens, waits until it runs, and returns it.
pub async fn run_gated(app: &TestApp, gate: &Gate) -> Value {
    let request = serde_json::json!({"image": PAYLOAD_IMAGE, "command": gate.wait_command()});
    let id = id(&app.submit(request).await);
    follow_states(app, &id, &["running"]).await.0
}

/// One series of the service's `/metrics` (0 if it is not there yet).
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}
