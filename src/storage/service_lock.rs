//! One service per SQLite file. SQLite has one writer and the service keeps per-process state
//! beside it (the dispatcher's claims, the reconcile queue, the webhook sender), so two services
//! on one file would both dispatch, reconcile and notify from it. A service on SQLite therefore
//! holds an exclusive lock on a file beside the database for as long as it runs, and a second
//! one refuses to start.
//!
//! The lock is `flock(2)` on `<database>.lock`: the kernel releases it when the process ends,
//! however it ends (a SIGKILL leaves no stale lock behind), and it holds between any processes
//! that share the file system, containers sharing a volume included. Commands that only read or
//! add rows (`token create`, `token list`) do not take it, so they work beside a running service.
//! Network file systems may not carry the lock from one machine to another (nor do they carry
//! SQLite's own locks well): PostgreSQL is the database for more than one machine.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use rustix::fs::FlockOperation;
use sqlx::sqlite::SqliteConnectOptions;

/// Held for as long as a service runs on an SQLite database; dropping it releases the lock.
#[derive(Debug)]
pub struct ServiceLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceLockError {
    #[error(
        "the SQLite database {database} is already served by another submission-helper \
         ({holder}; its lock is {lock}): one service per SQLite file. Stop that service \
         first, or use PostgreSQL to run several replicas"
    )]
    Held {
        database: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot take the lock {lock} beside the SQLite database: {source}")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ServiceLock {
    /// Takes the lock of the SQLite database `database_url` names, or says who holds it. Nothing
    /// to take for PostgreSQL (replicas share it by design) or an in-memory database.
    pub fn take(database_url: &str) -> Result<Option<ServiceLock>, ServiceLockError> {
        let Some(database) = sqlite_file(database_url) else {
            return Ok(None);
        };
        let lock = lock_path(&database);
        let io = |source: std::io::Error| ServiceLockError::Io {
            lock: lock.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                // The holder writes who it is right after taking the lock; read nothing, and
                // it is simply not named.
                let _ = file.read_to_string(&mut holder);
                return Err(ServiceLockError::Held {
                    database: absolute(&database),
                    lock: absolute(&lock),
                    holder: describe_holder(&holder),
                });
            }
            Err(errno) => return Err(io(errno.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", holder_line()).map_err(io)?;
        Ok(Some(ServiceLock { _file: file }))
    }
}

/// The file of an SQLite URL, or `None` for another database or one in memory.
fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    if !database_url.starts_with("sqlite:")
        || database_url.contains(":memory:")
        || database_url.contains("mode=memory")
    {
        return None;
    }
    let options = SqliteConnectOptions::from_str(database_url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// `<database>.lock`, beside the database and its `-wal` and `-shm` files.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What the holder writes into the lock file: its process id and the host it runs on (in a
/// container, the pid is the container's own and the host its name).
fn holder_line() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("pid={} host={host}", std::process::id())
}

/// "pid 4242 on host build-7", from the holder's line, or a plain word when it cannot be read.
fn describe_holder(line: &str) -> String {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .filter(|value| !value.is_empty())
    };
    match (field("pid"), field("host")) {
        (Some(pid), Some(host)) => format!("pid {pid} on host {host}"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "its process id is not known".to_owned(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_a_file_beside_the_sqlite_database() {
        for (url, lock) in [
            ("sqlite://submission-helper.db", "submission-helper.db.lock"),
            ("sqlite:///data/sh.db?mode=rwc", "/data/sh.db.lock"),
            ("sqlite:data/sh.db", "data/sh.db.lock"),
        ] {
            let database = sqlite_file(url).expect(url);

            assert_eq!(lock_path(&database), PathBuf::from(lock), "{url}");
        }
    }

    #[test]
    fn postgres_and_memory_databases_take_no_lock() {
        for url in [
            "postgres://user:pass@127.0.0.1/db",
            "sqlite::memory:",
            "sqlite://file.db?mode=memory",
        ] {
            assert_eq!(sqlite_file(url), None, "{url}");
        }
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let folder = tempfile::tempdir().expect("folder");
        let url = format!("sqlite://{}", folder.path().join("sh.db").display());

        let first = ServiceLock::take(&url).expect("first").expect("a lock");
        let refused = ServiceLock::take(&url).expect_err("second");

        let text = refused.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("sh.db"), "{text}");
        drop(first);
        assert!(ServiceLock::take(&url).expect("after the first").is_some());
    }

    #[test]
    fn an_unreadable_holder_is_described_without_a_pid() {
        assert_eq!(describe_holder(""), "its process id is not known");
        assert_eq!(describe_holder("pid=7 host=a"), "pid 7 on host a");
    }
}
