//! The command-line client: `submit`, `wait`, `get`, `describe`, `logs`, `cancel`, `rerun`,
//! `login`, `completion`, for people who submit from a terminal with the CAF submission
//! helper's flags and watch with kubectl's verbs.
//!
//! It is a client of the HTTP API only ([`api`]): it never opens the database or talks to the
//! cluster. The server and token come from the flags, the environment or `login`'s config file
//! ([`credentials`]). Each command group has its own module, [`command`] hands a command to it;
//! [`output`] prints kubectl's tables, [`error`] says what went wrong.
//!
//! Exit codes ([`outcome`]): 0 done (for `wait`: every submission succeeded), 1 some
//! submissions failed or were cancelled, 2 a usage error or a request the server refused or
//! could not be reached, 3 `wait`'s timeout passed.

pub mod api;
pub mod args;
mod cancel;
pub mod command;
pub mod credentials;
mod describe;
mod each;
pub mod error;
mod get;
mod jsonl;
mod login;
mod logs;
pub mod model;
pub mod outcome;
pub mod output;
mod rerun;
pub mod submit;
mod terminal;
pub mod wait;

pub use args::ClientCommand;
pub use command::run;
pub use error::ClientError;
pub use outcome::{ERROR_EXIT, Outcome};
