//! Container logs: written line by line with their time, as a kubelet's runtime keeps them,
//! and served on the kubelet's `/containerLogs/{namespace}/{pod}/{container}` endpoint so the
//! API server's `pods/log` proxy (and `kubectl logs -f`) works for real.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// A container's log, named as the kubelet's endpoint names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// How much of a live log is written, and whether the container has ended.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    bytes: u64,
    done: bool,
}

/// Every container log on this node, and the followers waiting for more of each.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    live: Arc<Mutex<HashMap<LogKey, watch::Receiver<Written>>>>,
}

impl LogStore {
    pub fn new(dir: PathBuf) -> Self {
        LogStore {
            dir,
            live: Arc::default(),
        }
    }

    fn path(&self, key: &LogKey) -> PathBuf {
        self.dir
            .join(&key.namespace)
            .join(&key.pod)
            .join(format!("{}.log", key.container))
    }

    /// Starts a container's log (replacing an earlier one of the same name).
    pub async fn writer(&self, key: LogKey) -> std::io::Result<LogWriter> {
        let path = self.path(&key);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = tokio::fs::File::create(&path).await?;
        let (sender, receiver) = watch::channel(Written::default());
        if let Ok(mut live) = self.live.lock() {
            live.insert(key, receiver);
        }
        Ok(LogWriter {
            file,
            sender,
            written: 0,
        })
    }

    fn follower(&self, key: &LogKey) -> Option<watch::Receiver<Written>> {
        self.live.lock().ok()?.get(key).cloned()
    }
}

/// Appends lines to one container's log; followers see each line once it is whole on disk.
pub struct LogWriter {
    file: tokio::fs::File,
    sender: watch::Sender<Written>,
    written: u64,
}

impl LogWriter {
    pub async fn line(&mut self, text: &str) -> std::io::Result<()> {
        let line = format!("{} {text}\n", Timestamp::now());
        self.file.write_all(line.as_bytes()).await?;
        self.file.flush().await?;
        self.written += line.len() as u64;
        let bytes = self.written;
        self.sender.send_modify(|written| written.bytes = bytes);
        Ok(())
    }

    /// Writes every line that arrives on `lines` until all senders are gone, then marks the
    /// log complete.
    pub async fn drain(mut self, mut lines: mpsc::Receiver<String>) {
        while let Some(line) = lines.recv().await {
            if let Err(error) = self.line(&line).await {
                tracing::warn!(%error, "could not write a log line");
            }
        }
        self.sender.send_modify(|written| written.done = true);
    }
}

/// The kubelet's query parameters for container logs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    pub follow: bool,
    pub tail_lines: Option<usize>,
    #[serde(default)]
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
    pub since_seconds: Option<i64>,
}

/// Turns stored lines (`<RFC 3339 time> <text>`) into what the client asked for.
pub fn select(stored: &str, query: &LogQuery, now: Timestamp) -> Vec<String> {
    let since = query
        .since_seconds
        .map(|seconds| now - jiff::SignedDuration::from_secs(seconds));
    let lines: Vec<&str> = stored
        .lines()
        .filter(|line| match since {
            None => true,
            Some(since) => line
                .split_once(' ')
                .and_then(|(time, _)| time.parse::<Timestamp>().ok())
                .is_none_or(|time| time >= since),
        })
        .collect();
    let start = query
        .tail_lines
        .map_or(0, |tail| lines.len().saturating_sub(tail));
    lines[start..]
        .iter()
        .map(|line| format_line(line, query.timestamps))
        .collect()
}

fn format_line(stored: &str, timestamps: bool) -> String {
    if timestamps {
        format!("{stored}\n")
    } else {
        let text = stored.split_once(' ').map_or(stored, |(_, text)| text);
        format!("{text}\n")
    }
}

pub fn router(store: LogStore) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(store)
}

async fn container_logs(
    State(store): State<LogStore>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let key = LogKey {
        namespace,
        pod,
        container,
    };
    let path = store.path(&key);
    let follower = store.follower(&key);
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return (StatusCode::NOT_FOUND, "no such container log").into_response();
    };
    let (sender, receiver) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut budget = query.limit_bytes.unwrap_or(usize::MAX);
        // limitBytes cuts the output at a byte count, as the kubelet does.
        let mut emit = |line: String| {
            let mut line = line.into_bytes();
            line.truncate(budget);
            budget -= line.len();
            bytes::Bytes::from(line)
        };
        let mut stored = String::new();
        let mut offset = match file.read_to_string(&mut stored).await {
            Ok(read) => read as u64,
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
        };
        // Only whole lines: a follower picks up the rest when it is complete.
        let whole = stored.rfind('\n').map_or(0, |at| at + 1);
        offset -= (stored.len() - whole) as u64;
        for line in select(&stored[..whole], &query, Timestamp::now()) {
            let line = emit(line);
            if line.is_empty() || sender.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let (true, Some(mut follower)) = (query.follow, follower) else {
            return;
        };
        loop {
            let written = *follower.borrow_and_update();
            if written.bytes > offset {
                let mut more = String::new();
                if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
                    return;
                }
                let read = (&mut file)
                    .take(written.bytes - offset)
                    .read_to_string(&mut more)
                    .await;
                let Ok(read) = read else { return };
                offset += read as u64;
                for line in more.lines() {
                    let line = emit(format_line(line, query.timestamps));
                    if line.is_empty() || sender.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if written.done || follower.changed().await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &str =
        "2026-01-01T00:00:00Z first\n2026-01-01T00:00:10Z second\n2026-01-01T00:00:20Z third\n";

    fn now() -> Timestamp {
        "2026-01-01T00:00:30Z".parse().expect("time")
    }

    #[test]
    fn lines_lose_their_time_unless_timestamps_are_asked_for() {
        let plain = select(STORED, &LogQuery::default(), now());
        let stamped = select(
            STORED,
            &LogQuery {
                timestamps: true,
                ..LogQuery::default()
            },
            now(),
        );

        assert_eq!(plain, ["first\n", "second\n", "third\n"]);
        assert_eq!(stamped[0], "2026-01-01T00:00:00Z first\n");
    }

    #[test]
    fn tail_lines_keeps_the_last_lines() {
        let query = LogQuery {
            tail_lines: Some(2),
            ..LogQuery::default()
        };

        assert_eq!(select(STORED, &query, now()), ["second\n", "third\n"]);
    }

    #[test]
    fn since_seconds_drops_older_lines() {
        let query = LogQuery {
            since_seconds: Some(15),
            ..LogQuery::default()
        };

        assert_eq!(select(STORED, &query, now()), ["third\n"]);
    }
}
