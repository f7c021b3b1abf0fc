//! `login [--server URL]`: reads a token (from standard input, or typed at a hidden prompt),
//! checks it against the server, and saves both in the config file, readable by its owner only.

use std::io::BufRead;

use super::api::Api;
use super::args::{LoginArgs, ServerArgs};
use super::credentials::{self, ConfigFile, Target};
use super::error::ClientError;
use super::outcome::Outcome;
use super::terminal;

pub async fn run(args: &LoginArgs) -> Result<Outcome, ClientError> {
    let path = credentials::default_config_path().ok_or_else(|| {
        ClientError::Usage(
            "neither XDG_CONFIG_HOME nor HOME is set: no place for the config file".into(),
        )
    })?;
    let saved = credentials::load(&path)?;
    let flags = ServerArgs {
        server: args.server.clone(),
        token: None,
    };
    let server = credentials::resolve(&flags, credentials::variable, saved.as_ref())?.server;
    let token = if terminal::stdin_is_terminal() {
        terminal::read_secret(&format!("Token for {server}: "))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|source| ClientError::Io {
                what: "reading the token from standard input".into(),
                source,
            })?;
        line
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(ClientError::Usage("no token given".into()));
    }
    let api = Api::new(Target {
        server: server.clone(),
        token: Some(token.clone()),
    })?;
    // Any call that needs a token proves it: the newest submission, if there is one.
    api.get::<serde_json::Value>("v1/submissions", &[("limit", "1".into())])
        .await?;
    credentials::save(
        &path,
        &ConfigFile {
            server: Some(server.to_string()),
            token: Some(token),
        },
    )?;
    eprintln!("the token works on {server}; saved in {}", path.display());
    Ok(Outcome::Success)
}
