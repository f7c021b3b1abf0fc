//! The seed's story on a real node: a kubelet of the control plane's release, containerd and
//! runc, a private registry that asks for a password, and a volume on this machine, all in the
//! network namespace `tests/real-node.sh` makes, where these tests run too.
//!
//! The node's payload image is built like the CAF images: its user's `.bashrc` sources the
//! release's setup and the analysis' (`analyze` on PATH, `AnalysisBase_VERSION` set), which
//! `bash -cl` reads. Each test's namespace gets the registry secret and the volume claim the
//! seed tells its users to create, by the seed's own commands.

mod story;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::harness::{TestCluster, eventually};
use crate::support::{Backend, TestApp, TestDatabase, spawn_app_tuned};

/// Why the real node's tests are ignored by plain `cargo test`, and the panic message when they
/// are run without the node.
pub const NEEDS_REAL_NODE: &str = "SH_TEST_REAL_NODE is not set: this test runs pods on a real kubelet; \
     run it with tests/run.sh, or inside `tests/real-node.sh run DIR`";

/// Runs a test on both databases, left out of a plain `cargo test` (reported as ignored):
/// `tests/run.sh` runs them inside the real node's namespace with `--include-ignored`.
#[macro_export]
macro_rules! on_the_real_node {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            #[ignore = "needs the real node (kubelet, containerd, a private registry): run tests/run.sh"]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            #[ignore = "needs the real node and Postgres: run tests/run.sh"]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    };
}

/// The registry of the real node and what it holds.
pub struct RealNode {
    /// `host:port`, as `--docker-server` names it and image names start.
    pub registry: String,
    pub username: String,
    pub password: String,
    /// The payload image (`<registry>/caf-k8s/cafexample:1`).
    pub image: String,
}

impl RealNode {
    /// The node `tests/real-node.sh` started; panics with [`NEEDS_REAL_NODE`] without one.
    pub fn from_env() -> Self {
        let var = |name: &str| match std::env::var(name) {
            Ok(value) if !value.is_empty() => value,
            _ => panic!("{NEEDS_REAL_NODE} ({name} is missing)"),
        };
        var("SH_TEST_REAL_NODE");
        RealNode {
            registry: var("SH_TEST_REGISTRY"),
            username: var("SH_TEST_REGISTRY_USERNAME"),
            password: var("SH_TEST_REGISTRY_PASSWORD"),
            image: var("SH_TEST_PAYLOAD_IMAGE"),
        }
    }
}

/// A test's namespace as the seed's users prepare theirs: the registry secret and the
/// `ntuples-claim` volume claim, bound to a volume in a folder of this machine.
pub struct Prepared {
    pub node: RealNode,
    pub cluster: TestCluster,
    /// The volume's folder, seen by the payloads at `/ntuples`.
    pub ntuples: PathBuf,
}

impl Prepared {
    pub async fn new() -> Self {
        let node = RealNode::from_env();
        let cluster = TestCluster::new().await;
        create_registry_secret(&cluster, "sh-k8s-registry-secret", &node, &node.password);
        let ntuples = create_ntuples_volume(&cluster).await;
        Prepared {
            node,
            cluster,
            ntuples,
        }
    }

    /// The service as the shipped service account; payloads request little, so that several
    /// fit on the one node at once (the helper's defaults ask for a core each).
    pub async fn spawn_service(
        &self,
        backend: Backend,
        tune: impl FnOnce(&mut submission_helper::startup::Settings),
    ) -> TestApp {
        self.cluster
            .apply_rbac(include_str!("../../docker/k8s/base/rbac.yaml"));
        let cluster = self.cluster.service_account_cluster().await;
        spawn_app_tuned(TestDatabase::new(backend).await, cluster, |settings| {
            settings.defaults.job.cpus = Some("100m".into());
            settings.defaults.job.memory = Some("64Mi".into());
            tune(settings);
        })
        .await
    }

    /// Creates a file on the volume, as the input data is put there.
    pub fn put(&self, path: &str, contents: &str) {
        let file = self.ntuples.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create folder on the volume");
        }
        std::fs::write(&file, contents).expect("write on the volume");
    }

    /// A file on the volume, once it exists.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.ntuples.join(path)).ok()
    }
}

/// Runs kubectl (the control plane's release) against the test cluster, in its namespace.
pub fn kubectl(cluster: &TestCluster, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["--namespace", &cluster.namespace])
        .args(args)
        .output()
        .expect("run kubectl")
}

/// `kubectl create secret docker-registry NAME --docker-server=... --docker-username=...
/// --docker-password=...`, as the seed tells its users to.
pub fn create_registry_secret(cluster: &TestCluster, name: &str, node: &RealNode, password: &str) {
    let output = kubectl(
        cluster,
        &[
            "create",
            "secret",
            "docker-registry",
            name,
            &format!("--docker-server={}", node.registry),
            &format!("--docker-username={}", node.username),
            &format!("--docker-password={password}"),
        ],
    );
    assert!(
        output.status.success(),
        "kubectl create secret: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The seed's `pvc.yaml`, word for word.
const SEED_PVC: &str = r#"# pvc.yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ntuples-claim
spec:
  accessModes:
    - ReadWriteMany
  storageClassName: ""  # For manually created PersistentVolume
  resources:
    requests:
      # Requirement on the PersistentVolume, change if more storage is
      # required
      storage: 1Gi
"#;

/// A hostPath PersistentVolume on a folder of this machine, reserved for the namespace's
/// `ntuples-claim`, and the claim applied from the seed's `pvc.yaml`; returns the folder once
/// the claim is bound. The folder is writable by the image's user.
async fn create_ntuples_volume(cluster: &TestCluster) -> PathBuf {
    let folder = cluster.scratch.path().join("ntuples");
    std::fs::create_dir_all(&folder).expect("volume folder");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777))
        .expect("volume folder permissions");
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": format!("ntuples-{}", cluster.namespace)},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": folder, "type": "Directory"},
            "claimRef": {"namespace": cluster.namespace, "name": "ntuples-claim"}
        }
    }))
    .expect("volume");
    Api::<PersistentVolume>::all(cluster.admin.clone())
        .create(&PostParams::default(), &volume)
        .await
        .expect("create the volume");
    let file = cluster.scratch.path().join("pvc.yaml");
    std::fs::write(&file, SEED_PVC).expect("write pvc.yaml");
    let output = kubectl(
        cluster,
        &["apply", "-f", file.to_str().expect("utf-8 path")],
    );
    assert!(
        output.status.success(),
        "kubectl apply -f pvc.yaml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(cluster.admin.clone(), &cluster.namespace);
    eventually(
        "ntuples-claim to be bound",
        Duration::from_secs(60),
        || async {
            let claim = claims.get_opt("ntuples-claim").await.ok().flatten()?;
            (claim.status?.phase.as_deref() == Some("Bound")).then_some(())
        },
    )
    .await;
    folder
}
