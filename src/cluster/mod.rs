//! The cluster side: the Job manifest, the calls the service makes to the API server, the
//! dispatcher that creates Jobs for stored submissions, the watchers that keep their status
//! current, and the kubectl-like views of Jobs and pods.
//!
//! [`Cluster`] (in `client`) is the handle every part shares; [`ClusterError`] (in `error`) is
//! what they report when the API server cannot be asked or refuses.

pub mod archiver;
pub mod attempts;
pub mod cache;
pub mod cached_pod;
pub mod cancels;
pub mod client;
pub mod clusters;
pub mod controller;
mod create_outcomes;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod failover;
pub mod kueue;
pub mod kueue_progress;
pub mod kueue_settings;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod oom;
pub mod progress;
pub mod reachability;
pub mod reconcile;
pub mod selector;
pub mod shared_logs;
pub mod tes_logs;
pub mod tes_pod;
pub mod triggers;
pub mod trim;
pub mod views;
pub mod workloads;

pub use client::{Cluster, Created};
pub use clusters::Clusters;
pub use error::ClusterError;
