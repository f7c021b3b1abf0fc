//! The HTTP layer: one file per resource's handlers, the [`Context`] they are handed
//! ([`context`]), and the [`router`] that puts them together with their OpenAPI document.

pub mod auth;
mod campaigns;
mod cancel;
mod cluster;
pub mod context;
pub mod database_metrics;
pub mod error;
pub mod event_feed;
pub mod event_stream;
pub mod events;
pub mod exposition;
mod extract;
pub mod follows;
mod health;
mod logs;
pub mod metrics;
pub mod oidc;
mod query_filters;
mod queue_place;
pub mod rate_limit;
pub mod registry;
mod request_log;
pub mod request_metrics;
mod rerun;
pub mod responses;
mod router;
mod submission_lookup;
pub mod submission_view;
pub mod submissions;
pub mod submit;
pub mod tes;
mod time_limit;
pub mod token_use;
pub mod tokens;
mod ui;

pub use context::{Context, Parts};
pub use router::{openapi_json, router};
