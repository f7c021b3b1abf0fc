//! The seed's story on a real node: a kubelet of the control plane's release, containerd and
//! runc, a private registry that asks for a password, and a volume on this machine, all in the
//! network namespace `tests/real-node.sh` makes, where these tests run too.
//!
//! The node's payload image is built like the CAF images: its user's `.bashrc` sources the
//! release's setup and the analysis' (`analyze` on PATH, `AnalysisBase_VERSION` set), which
//! `bash -cl` reads. Each test's namespace gets the registry secret and the volume claim the
//! seed tells its users to create, by the seed's own commands.

mod retry_policy;
mod story;
mod tes;

use crate::harness::TestCluster;
use crate::payload_node::RealNode;
use crate::support::{Backend, TestApp};

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

/// A test's namespace on the real node, prepared as the seed's users prepare theirs (the
/// harness does it for every namespace there): the registry secret and the `ntuples-claim`
/// volume, bound to a folder of this machine.
pub struct Prepared {
    pub node: RealNode,
    pub cluster: TestCluster,
}

impl Prepared {
    /// A namespace on the real node; panics with [`NEEDS_REAL_NODE`] without one.
    pub async fn new() -> Self {
        let node = RealNode::from_env().unwrap_or_else(|| panic!("{NEEDS_REAL_NODE}"));
        Prepared {
            node,
            cluster: TestCluster::new().await,
        }
    }

    /// The service as the shipped service account, with the tests' small defaults (so that
    /// several payloads fit on the one node at once) changed by `tune`.
    pub async fn spawn_service(
        &self,
        backend: Backend,
        tune: impl FnOnce(&mut submission_helper::startup::Settings),
    ) -> TestApp {
        self.cluster.spawn_service_tuned(backend, tune).await
    }

    /// Creates a file on the volume, as the input data is put there.
    pub fn put(&self, path: &str, contents: &str) {
        let file = self.cluster.volume().join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create folder on the volume");
        }
        std::fs::write(&file, contents).expect("write on the volume");
    }

    /// A file on the volume, once it exists.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.cluster.volume().join(path)).ok()
    }
}
