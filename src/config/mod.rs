//! The server's options (`submission-helper serve`), each with an environment variable (for
//! containers). The rest of the command line is [`crate::cli`]'s.
//!
//! Every flag is read into the value the service uses where clap reads it ([`values`]), so a
//! bad one stops the server before it starts, named in the refusal. Every default is the one of
//! the setting the flag fills (`startup::Settings`, `SubmitDefaults`, `webhooks::Settings`, the
//! OpenID Connect claim mapping), written there once and shown by `--help`.

pub mod clusters;
pub mod kueue;
pub mod notify;
pub mod oidc;
pub mod serve;
pub mod submissions;
pub mod values;

pub use serve::{DEFAULT_DATABASE_URL, LogFormat, ServeArgs};
