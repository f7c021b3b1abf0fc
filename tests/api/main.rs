//! The HTTP API, driven over a real socket against real SQLite files and a real Postgres server.
//!
//! These tests run with no cluster configured (submissions stay `queued`), or, for what users are
//! told when it cannot be asked, one whose API server cannot be reached; what needs a cluster
//! is proven against a real API server by the end-to-end suite in `tests/e2e`. The `storage`
//! tests also call the store directly, for what the API cannot reach.
//!
//! Every test runs on SQLite; its `postgres` twin is ignored unless asked for with
//! `cargo test -- --include-ignored` (as `tests/run.sh` does), and then needs the server named by
//! `SH_TEST_POSTGRES_URL`.

mod support;

mod admission_gates;
mod auth;
mod campaign_counts;
mod campaigns;
mod cluster_errors;
mod cors;
mod event_replicas;
mod events;
mod health;
mod hostile;
mod idempotency;
mod metrics;
mod oidc;
mod oidc_issuer;
mod openapi;
mod placement;
mod prometheus;
mod request_log;
mod reruns;
mod storage;
mod submissions;
mod tes;
mod tokens;
mod validation;
mod webhook_outbox;
mod webhook_receiver;
mod webhooks;
