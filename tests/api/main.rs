//! The HTTP API, driven over a real socket against real SQLite files and a real Postgres server.
//!
//! These tests run with no cluster configured (submissions stay `queued`); what needs a cluster
//! is proven against a real API server by the end-to-end suite in `tests/e2e`.

mod support;

mod auth;
mod health;
mod hostile;
mod idempotency;
mod openapi;
mod submissions;
mod validation;
