//! The node a test's payloads run on, and what a test namespace needs there.
//!
//! On the real node of `tests/real-node.sh` pods pull their image from its private registry,
//! with the registry secret, and mount the `ntuples-claim` volume at `/ntuples`: each test
//! namespace gets both, made by the seed's own commands. On the simulated node (node-sim) the
//! payloads' commands run on this machine and images are not pulled, so nothing is needed.
//! Shared by the `e2e`, `cli` and `faults` test binaries, through the harness.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support::eventually;

/// The image the tests' payloads run: the real node's registry has it (built like the CAF
/// images, with bash and busybox); the simulated node ignores images. `tests/real-node.sh`
/// pushes it under this name.
pub const PAYLOAD_IMAGE: &str = "10.213.0.1:5000/caf-k8s/cafexample:1";

/// An image the real node's registry does not have (`not found` when pulled); the simulated
/// node treats every image named `unpullable` as missing.
pub const MISSING_IMAGE: &str = "10.213.0.1:5000/analysis/unpullable:1";

/// The real node `tests/real-node.sh` started, and its registry.
#[derive(Debug, Clone)]
pub struct RealNode {
    /// `host:port`, as `--docker-server` names it and image names start.
    pub registry: String,
    pub username: String,
    pub password: String,
    /// [`PAYLOAD_IMAGE`].
    pub image: String,
}

impl RealNode {
    /// The real node, when the environment names one (`SH_TEST_REAL_NODE`, written by
    /// `tests/real-node.sh`); `None` when the payloads run on the simulated node.
    pub fn from_env() -> Option<Self> {
        std::env::var("SH_TEST_REAL_NODE").ok()?;
        let var = |name: &str| match std::env::var(name) {
            Ok(value) if !value.is_empty() => value,
            _ => panic!(
                "SH_TEST_REAL_NODE is set but {name} is not: source tests/real-node.sh's env file"
            ),
        };
        let node = RealNode {
            registry: var("SH_TEST_REGISTRY"),
            username: var("SH_TEST_REGISTRY_USERNAME"),
            password: var("SH_TEST_REGISTRY_PASSWORD"),
            image: var("SH_TEST_PAYLOAD_IMAGE"),
        };
        assert_eq!(
            node.image, PAYLOAD_IMAGE,
            "tests/real-node.sh pushed another image than the tests run"
        );
        Some(node)
    }
}

/// Runs kubectl (the control plane's release) against `kubeconfig`, in `namespace`.
pub fn kubectl(kubeconfig: &Path, namespace: &str, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", namespace])
        .args(args)
        .output()
        .expect("run kubectl (on PATH once the control plane's env file is sourced)")
}

/// `kubectl create secret docker-registry NAME --docker-server=... --docker-username=...
/// --docker-password=...`, as the seed tells its users to.
pub fn create_registry_secret(
    kubeconfig: &Path,
    namespace: &str,
    name: &str,
    node: &RealNode,
    password: &str,
) {
    let output = kubectl(
        kubeconfig,
        namespace,
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

/// A hostPath PersistentVolume on `folder` (made writable by the image's user), reserved for
/// the namespace's `ntuples-claim`, and the claim applied from the seed's `pvc.yaml`; returns
/// once the claim is bound.
pub async fn create_ntuples_volume(
    admin: &Client,
    kubeconfig: &Path,
    namespace: &str,
    folder: &Path,
) {
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o777))
        .expect("volume folder permissions");
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": format!("ntuples-{namespace}")},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": folder, "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": "ntuples-claim"}
        }
    }))
    .expect("volume");
    Api::<PersistentVolume>::all(admin.clone())
        .create(&PostParams::default(), &volume)
        .await
        .expect("create the volume");
    let file: PathBuf = folder.with_file_name("pvc.yaml");
    std::fs::write(&file, SEED_PVC).expect("write pvc.yaml");
    let output = kubectl(
        kubeconfig,
        namespace,
        &["apply", "-f", file.to_str().expect("utf-8 path")],
    );
    assert!(
        output.status.success(),
        "kubectl apply -f pvc.yaml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), namespace);
    eventually(
        "ntuples-claim to be bound",
        Duration::from_secs(60),
        || async {
            let claim = claims.get_opt("ntuples-claim").await.ok().flatten()?;
            (claim.status?.phase.as_deref() == Some("Bound")).then_some(())
        },
    )
    .await;
}
