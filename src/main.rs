use std::process::ExitCode;

use clap::Parser;
use submission_helper::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", submission_helper::http::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(args) => submission_helper::token(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            submission_helper::serve(*args)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(submission_helper::client::run(command).await),
    }
}
