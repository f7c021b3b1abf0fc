//! The command-line client, run as the real binary (`submission-helper submit`, `get`, ...)
//! against the real service started on 127.0.0.1, as a user would run it.
//!
//! The tests without a cluster talk to a service that has none (submissions stay `queued`);
//! those on the local control plane (`tests/run.sh`) run the payloads on the real node (a
//! thousand at once on the simulated node) and are ignored by a plain `cargo test`, as in the
//! end-to-end suite.

#[path = "../api/support.rs"]
mod support;

#[path = "../e2e/harness.rs"]
mod harness;

#[path = "../e2e/payload_node.rs"]
mod payload_node;

mod process;

/// Every test's name starts with `cli::`, so `tests/run.sh -- cli` runs these (and the client's
/// unit tests, `client::...`).
#[path = "."]
mod cli {
    mod cancel;
    mod connection;
    mod get;
    mod logs;
    mod rerun;
    mod submit;
    mod terminal;
    mod wait;
}
