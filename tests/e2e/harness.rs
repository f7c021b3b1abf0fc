//! A namespace per test, the shipped RBAC applied in it, and the service started with that
//! service account's token, talking to the control plane named by `SH_TEST_KUBECONFIG`.
//! Shared by the `e2e` and `faults` test binaries; each uses part of it.

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

use crate::support::{Backend, TestApp, TestDatabase, eventually_seen};

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
}

impl TestCluster {
    /// A fresh namespace on the control plane named by `SH_TEST_KUBECONFIG`; panics without one.
    pub async fn new() -> Self {
        Self::with_namespace_prefix("e2e-").await
    }

    /// A fresh namespace whose name starts with `prefix`: `lone-` is one the shared simulated
    /// node leaves alone (`tests/run.sh`), for a test that runs a node of its own.
    pub async fn with_namespace_prefix(prefix: &str) -> Self {
        let kubeconfig = kubeconfig_path();
        let admin = client_from(Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig")).await;
        let namespace = format!(
            "{prefix}{}",
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        );
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
        TestCluster {
            admin,
            namespace,
            kubeconfig,
            scratch: tempfile::tempdir().expect("scratch directory"),
        }
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
            .spawn()
            .await
    }

    /// The service account's view of our namespace, built as the service builds its own.
    pub async fn service_account_cluster(&self) -> Cluster {
        let config = Config::from_custom_kubeconfig(
            self.service_account_kubeconfig().await,
            &KubeConfigOptions::default(),
        )
        .await
        .expect("service account config");
        Cluster::from_config(config, self.namespace.clone())
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
            .spawn()
            .await
    }

    /// The service as the shipped service account, with settings changed by `tune`.
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
            .with_settings(tune)
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
        Gate(self.scratch.path().join(name))
    }

    /// A file each payload appends a line to when it runs: what really ran, counted apart from
    /// the Jobs and pods the service and the cluster say exist.
    pub fn ledger(&self, name: &str) -> Ledger {
        Ledger(self.scratch.path().join(name))
    }
}

/// Where payloads record that they ran (the simulated node runs them on this machine).
pub struct Ledger(PathBuf);

impl Ledger {
    /// A payload that records `tag` once each time it runs. Lines this short are appended
    /// whole even when many payloads write at once (`O_APPEND`).
    pub fn record_command(&self, tag: &str) -> String {
        format!("echo '{tag}' >> '{}'", self.0.display())
    }

    /// How many times each tag was recorded.
    pub fn runs(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        let mut runs = BTreeMap::new();
        for tag in text.lines() {
            *runs.entry(tag.to_owned()).or_default() += 1;
        }
        runs
    }
}

/// A file a payload waits for (`while [ ! -e $GATE ]`), created by the test to let it go on.
pub struct Gate(PathBuf);

impl Gate {
    pub fn open(&self) {
        std::fs::write(&self.0, b"go").expect("open gate");
    }

    /// A shell snippet that blocks until the gate is opened, or the test is over (its scratch
    /// directory is gone), so no payload outlives its test.
    pub fn wait_command(&self) -> String {
        let scratch = self.0.parent().unwrap_or(&self.0);
        format!(
            "while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done",
            self.0.display(),
            scratch.display()
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
    let request = serde_json::json!({"image": "busybox", "command": gate.wait_command()});
    let id = id(&app.submit(request).await);
    follow_states(app, &id, &["running"]).await.0
}
