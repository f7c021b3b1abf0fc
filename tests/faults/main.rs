//! Fault injection against the real control plane: the service killed with SIGKILL during a
//! burst, the API server stopped and started again, the database stopped while Jobs finish,
//! two replicas on one database; and webhooks across SIGKILLs (no cluster needed). Each test
//! prints its figures; they run one at a time, since stopping the API server affects everyone.

#[path = "../api/support.rs"]
mod support;

#[path = "../e2e/harness.rs"]
mod harness;

#[path = "../api/webhook_receiver.rs"]
mod webhook_receiver;

mod apiserver;
mod database;
mod kill;
mod process;
mod replicas;
mod shutdown;
mod single_service;
mod webhooks;

/// Held by every test here: they change the shared control plane or load it heavily.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
