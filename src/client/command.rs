//! Runs one client command: finds the server and token, hands the command to its module, and
//! turns how it ended into the exit code.

use std::process::ExitCode;

use super::api::Api;
use super::args::{ClientCommand, ServerArgs};
use super::error::ClientError;
use super::outcome::{ERROR_EXIT, Outcome};
use super::{cancel, credentials, describe, get, login, logs, rerun, submit, terminal, wait};

/// Runs a client command and says how it ended; errors are printed, never as JSON.
/// `command_line` is the whole command line, which `completion` writes a script for.
pub async fn run(command: ClientCommand, command_line: impl FnOnce() -> clap::Command) -> ExitCode {
    match execute(command, command_line).await {
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

async fn execute(
    command: ClientCommand,
    command_line: impl FnOnce() -> clap::Command,
) -> Result<Outcome, ClientError> {
    let connect = |server: &ServerArgs| Api::new(credentials::target(server)?);
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
        ClientCommand::Rerun(args) => rerun::run(&connect(&args.server)?, &args).await,
        ClientCommand::Login(args) => login::run(&args).await,
        ClientCommand::Completion(args) => {
            let mut script = Vec::new();
            clap_complete::generate(
                args.shell,
                &mut command_line(),
                "submission-helper",
                &mut script,
            );
            terminal::print(&String::from_utf8_lossy(&script))?;
            Ok(Outcome::Success)
        }
    }
}
