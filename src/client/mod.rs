//! The command-line client: `submit`, `wait`, `get`, `describe`, `logs`, `cancel`, `login`,
//! `completion`, for people who submit from a terminal with the CAF submission helper's flags
//! and watch with kubectl's verbs.
//!
//! It is a client of the HTTP API only ([`api`]): it never opens the database or talks to the
//! cluster. The server and token come from the flags, the environment or `login`'s config file
//! ([`credentials`]). Each command group has its own module; [`output`] prints kubectl's tables.
//!
//! Exit codes: 0 done (for `wait`: every submission succeeded), 1 some submissions failed or
//! were cancelled, 2 a usage error or a request the server refused or could not be reached,
//! 3 `wait`'s timeout passed.

pub mod api;
pub mod args;
mod cancel;
pub mod credentials;
mod describe;
mod get;
mod jsonl;
mod login;
mod logs;
pub mod model;
pub mod output;
pub mod submit;
mod terminal;
pub mod wait;

use std::process::ExitCode;

use api::{Api, ClientError};
pub use args::ClientCommand;

/// How a command ended, as its exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for a wait, every submission succeeded.
    Success,
    /// Some submissions failed or were cancelled.
    SomeFailed,
    /// The wait's timeout passed first.
    TimedOut,
}

/// The exit code of an error: usage, refused or unreachable alike.
pub const ERROR_EXIT: u8 = 2;

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(match outcome {
            Outcome::Success => 0,
            Outcome::SomeFailed => 1,
            Outcome::TimedOut => 3,
        })
    }
}

/// Runs a client command and says how it ended; errors are printed, never as JSON.
pub async fn run(command: ClientCommand) -> ExitCode {
    match execute(command).await {
        Ok(outcome) => outcome.into(),
        // A reader that stopped reading (`| head`) ends the command, quietly.
        Err(ClientError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(ERROR_EXIT)
        }
    }
}

async fn execute(command: ClientCommand) -> Result<Outcome, ClientError> {
    let connect = |server: &args::ServerArgs| Api::new(credentials::target(server)?);
    match command {
        ClientCommand::Submit(args) => submit::run(&connect(&args.server)?, *args).await,
        ClientCommand::Wait(args) => {
            let api = connect(&args.server)?;
            wait::wait_for(&api, &args.ids, Vec::new(), args.timeout).await
        }
        ClientCommand::Get(args) => get::run(&connect(&args.server)?, &args).await,
        ClientCommand::Describe(args) => describe::run(&connect(&args.server)?, &args).await,
        ClientCommand::Logs(args) => logs::run(&connect(&args.server)?, &args).await,
        ClientCommand::Cancel(args) => cancel::run(&connect(&args.server)?, &args).await,
        ClientCommand::Login(args) => login::run(&args).await,
        ClientCommand::Completion(args) => {
            let mut command = <crate::config::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "submission-helper", &mut script);
            terminal::print(&String::from_utf8_lossy(&script))?;
            Ok(Outcome::Success)
        }
    }
}
