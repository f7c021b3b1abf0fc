//! Fault injection against the real control plane: the service killed with SIGKILL during a
//! burst, the API server stopped and started again, the database stopped while Jobs finish,
//! two replicas on one database; and webhooks across SIGKILLs (no cluster needed). Each test
//! prints its figures; they run one at a time, since stopping the API server affects everyone.
//! Their payloads run on the real node, but for the SIGKILL burst's 500 and the replicas' 100,
//! which run on the simulated node (a real node of 2 cores starts about two pods a second).

#[path = "../api/support.rs"]
mod support;

#[path = "../e2e/harness.rs"]
mod harness;

#[path = "../e2e/payload_node.rs"]
mod payload_node;

#[path = "../api/webhook_receiver.rs"]
mod webhook_receiver;

mod apiserver;
mod database;
mod kill;
mod process;
mod replicas;
mod reruns;
mod several_clusters;
mod shutdown;
mod single_service;
mod submissions;
mod webhooks;

/// Held by every test here, from before it makes its cluster namespace: they change the shared
/// control plane or load it heavily.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
