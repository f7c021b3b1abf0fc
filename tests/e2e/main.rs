//! The service's whole story against a real kube-apiserver, job controller and garbage
//! collector, with the payloads run by a real node (kubelet, containerd, a private registry) or,
//! for what only it can do on demand, by the simulated node (`tests/run.sh` starts them all).
//!
//! The service runs as a service account bound to the Role the install ships
//! (`docker/k8s/base/rbac.yaml`) and nothing more, each test in its own namespace with its own
//! database.

#[path = "../api/support.rs"]
mod support;
#[path = "../api/webhook_receiver.rs"]
mod webhook_receiver;

mod archive;
mod browser;
mod campaigns;
mod controller;
mod dispatch;
mod harness;
mod install;
mod kubernetes;
mod node;
mod payload_node;
mod queue_place;
mod real_node;
mod recovery;
mod reruns;
mod retry_policy;
mod several_clusters;
mod story;
mod through_kueue;
mod ui;
mod ui_campaigns;
