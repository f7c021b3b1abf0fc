//! From a request to a submission: parse, don't validate. Each group of fields has its parser,
//! which collects every error of its fields; [`fields`] puts one request together from them,
//! and [`new_submissions`] the submissions of a whole request, resolving what their
//! `depends_on` names. Past this boundary nothing checks a submission again.

mod env_and_labels;
mod fields;
pub(crate) use fields::parse_cluster;
mod image_and_command;
mod new_submissions;
mod notify;
mod resources;
mod retries_and_deadlines;
mod tool;
mod volume;

pub use image_and_command::MAX_COMMAND_BYTES;
pub use new_submissions::{NewSubmissions, SentAs};
pub use retries_and_deadlines::{MAX_BACKOFF_LIMIT, MAX_TIME_MINUTES};
