use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use submission_helper::cli::{Cli, Command};
use submission_helper::config::LogFormat;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<ExitCode> {
    // Before the runtime starts its threads: glibc reads the setting at each thread's first
    // allocation.
    submission_helper::memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", submission_helper::http::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(args) => submission_helper::token::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            match args.log_format {
                LogFormat::Text => tracing_subscriber::fmt()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_env_filter(filter)
                    .init(),
                // One JSON object a line, with the spans it happened in: the request's
                // (method, path, request_id) and the handler's (submission_id).
                LogFormat::Json => tracing_subscriber::fmt()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_env_filter(filter)
                    .init(),
            }
            submission_helper::serve(*args)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(submission_helper::client::run(command, Cli::command).await),
    }
}
