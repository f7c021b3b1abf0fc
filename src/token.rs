//! `submission-helper token ...`: create, list and revoke API tokens in the service's database
//! directly, for the first admin token and for operators (admins can also use `/v1/tokens`).

use crate::cli::{TokenArgs, TokenCommand};
use crate::http::tokens::expiry_after;
use crate::{domain, storage};

/// How often a command is tried when SQLite answers "database is locked" (a service beside it
/// holding the file's locks past the busy timeout, or a lock the busy handler does not wait
/// for), and how long it waits before the next try.
const LOCKED_TRIES: u32 = 5;
const LOCKED_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs a `token` command against the database named by `--database-url`; a try that found
/// the SQLite file locked changed nothing, and is made again.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let mut tries = 1;
    loop {
        match run_once(&args).await {
            Err(error) if tries < LOCKED_TRIES && is_locked(&error) => {
                tries += 1;
                tokio::time::sleep(LOCKED_PAUSE).await;
            }
            done => return done,
        }
    }
}

/// Whether SQLite refused with "database is locked" (`SQLITE_BUSY`, 5, or one of its
/// extended codes).
fn is_locked(error: &anyhow::Error) -> bool {
    let Some(storage::StorageError::Database(sqlx::Error::Database(database))) =
        error.downcast_ref::<storage::StorageError>()
    else {
        return false;
    };
    let code = database.code().and_then(|code| code.parse::<i64>().ok());
    code.is_some_and(|code| code & 0xff == 5)
}

async fn run_once(args: &TokenArgs) -> anyhow::Result<()> {
    let args = args.clone();
    let store = storage::Store::connect(&args.database_url).await?;
    match args.command {
        TokenCommand::Create {
            user,
            admin,
            delegate,
            max_concurrent,
            expires_in,
            description,
        } => {
            let user = domain::parse_user_name(&user)
                .map_err(|reason| anyhow::anyhow!("--user {reason}"))?;
            if max_concurrent == Some(0) {
                anyhow::bail!(
                    "--max-concurrent must be at least 1 (leave it out for the server's)"
                );
            }
            let expires_at = expires_in
                .map(|expires_in| expiry_after(&expires_in, jiff::Timestamp::now()))
                .transpose()
                .map_err(|reason| anyhow::anyhow!("--expires-in {reason}"))?;
            let (token, secret) = store
                .create_token_with(&storage::NewToken {
                    user,
                    admin,
                    delegate,
                    max_concurrent,
                    expires_at,
                    description,
                })
                .await?;
            eprintln!(
                "created token {} for user {} (admin: {}, delegate: {}, max concurrent: {}, expires: {}); it is shown only now:",
                token.id,
                token.user,
                token.admin,
                token.delegate,
                token
                    .max_concurrent
                    .map_or("the server's".to_owned(), |limit| limit.to_string()),
                token.expires_at.as_deref().unwrap_or("never")
            );
            println!("{secret}");
            if let Some(webhook_secret) = store.webhook_secret(&token.id).await? {
                eprintln!(
                    "webhook signing secret of this token (for receivers of notify_url; shown only now): {webhook_secret}"
                );
            }
        }
        TokenCommand::List => {
            println!(
                "ID\tUSER\tADMIN\tDELEGATE\tMAX-CONCURRENT\tCREATED\tEXPIRES\tLAST-USED\tREVOKED\tDESCRIPTION"
            );
            for token in store.tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.user,
                    token.admin,
                    token.delegate,
                    token
                        .max_concurrent
                        .map_or("-".to_owned(), |limit| limit.to_string()),
                    token.created_at,
                    token.expires_at.as_deref().unwrap_or("never"),
                    token.last_used_at.as_deref().unwrap_or("-"),
                    token.revoked_at.as_deref().unwrap_or("-"),
                    token.description.as_deref().unwrap_or("-")
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(&id).await? {
                anyhow::bail!("no active token with id {id}");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
