//! The command line of the one binary: `serve` (the server's options are [`crate::config`]'s),
//! `openapi`, `token` (run by [`crate::token`]) and the client's commands ([`crate::client`]).
//!
//! Only this module knows the whole command line, so shell completions are written from it:
//! the client is handed [`Cli`]'s definition to print one.

use clap::{Args, Parser, Subcommand};

use crate::client::ClientCommand;
use crate::config::{DEFAULT_DATABASE_URL, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "submission-helper",
    version,
    about = "Run batch payloads on Kubernetes over plain HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document of the API.
    Openapi,
    /// Manage API tokens (shown once at creation, stored only as hashes).
    Token(TokenArgs),
    /// The client of a running service: submit, wait, get, describe, logs, cancel, login.
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The service's database.
    #[arg(
        long,
        env = "SUBMISSION_HELPER_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        global = true
    )]
    pub database_url: String,
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print it (it cannot be shown again).
    Create {
        /// The user the token acts as (a label value: letters, digits, '-', '_', '.').
        #[arg(long)]
        user: String,
        /// May see and cancel every user's submissions.
        #[arg(long)]
        admin: bool,
        /// May act on behalf of any user with the X-On-Behalf-Of header (portals, dashboards).
        #[arg(long)]
        delegate: bool,
        /// Jobs of the user's submissions sent with this token that may be active at once
        /// (instead of the server's --max-concurrent).
        #[arg(long)]
        max_concurrent: Option<i64>,
        /// The token stops working this long from now: 90m, 12h, 30d (default: never).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        /// What the token is for, shown by `token list`.
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens (never their secrets), with their expiry and last use.
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_flag_is_well_formed_and_its_default_is_a_value_it_accepts() {
        // clap's own checks, the defaults run through each flag's parser among them.
        Cli::command().debug_assert();
    }

    #[test]
    fn the_client_commands_are_top_level_commands() {
        let cli = Cli::try_parse_from(["submission-helper", "wait", "0193-ab"]).expect("parses");

        assert!(matches!(
            cli.command,
            Command::Client(ClientCommand::Wait(ref args)) if args.ids == ["0193-ab"]
        ));
    }
}
