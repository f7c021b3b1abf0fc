//! The GA4GH Task Execution Service API (TES 1.1) under `/ga4gh/tes/v1`: a task is a
//! submission underneath, with the same tokens, owners, storage and Jobs as `/v1`.
//!
//! - `routes`: the router, and the TES document generated from the handlers;
//! - `service_info`: what the service is (public);
//! - `tasks`: create, get and list tasks, and how their errors are answered;
//! - `cancel`: cancelling a task.

pub mod cancel;
pub mod routes;
pub mod service_info;
pub mod tasks;
