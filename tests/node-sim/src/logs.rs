//! Container logs on disk. Each container's output is kept in one file in the CRI format a
//! kubelet's runtime writes (`<RFC 3339 nano time> <stream> F <text>`), so every line keeps
//! the time it was written: that is what `timestamps`, `sinceSeconds` and `sinceTime` need.
//! Followers are told when new lines are on disk and when the container has ended.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

/// A container's log, named as the kubelet's endpoint names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Which output of the process a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, with the time it was read.
#[derive(Debug)]
pub struct Line {
    pub time: Timestamp,
    pub stream: Stream,
    pub text: Vec<u8>,
}

/// The stored form of a line: `<time> <stream> F <text>\n`.
pub fn encode(line: &Line) -> Vec<u8> {
    let stream = match line.stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    let mut encoded = format!("{} {stream} F ", line.time).into_bytes();
    encoded.extend_from_slice(&line.text);
    encoded.push(b'\n');
    encoded
}

/// A stored line taken apart: its time as written, and its text (without the newline).
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub time: &'a str,
    pub text: &'a [u8],
}

/// Parses one stored line (without its newline); None for anything not in the CRI format.
pub fn decode(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |byte| *byte == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let _tag = parts.next()?;
    let text = parts.next().unwrap_or_default();
    Some(Entry { time, text })
}

/// The kubelet's query parameters for container logs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    pub follow: bool,
    pub tail_lines: Option<i64>,
    #[serde(default)]
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    #[serde(default)]
    pub previous: bool,
}

impl LogQuery {
    /// The oldest line to show, if the client asked for recent lines only.
    fn since(&self, now: Timestamp) -> Option<Timestamp> {
        self.since_time.or_else(|| {
            self.since_seconds
                .map(|seconds| now - SignedDuration::from_secs(seconds))
        })
    }

    /// A line as the client asked to see it: with its time or without.
    pub fn render(&self, entry: &Entry<'_>) -> Vec<u8> {
        let mut rendered = Vec::with_capacity(entry.time.len() + entry.text.len() + 2);
        if self.timestamps {
            rendered.extend_from_slice(entry.time.as_bytes());
            rendered.push(b' ');
        }
        rendered.extend_from_slice(entry.text);
        rendered.push(b'\n');
        rendered
    }

    /// The lines of `stored` (whole stored lines) the client asked for, rendered.
    pub fn select(&self, stored: &[u8], now: Timestamp) -> Vec<Vec<u8>> {
        let since = self.since(now);
        let entries: Vec<Entry<'_>> = stored
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(decode)
            .filter(|entry| match since {
                None => true,
                Some(since) => entry
                    .time
                    .parse::<Timestamp>()
                    .is_ok_and(|time| time >= since),
            })
            .collect();
        let skip = self.tail_lines.map_or(0, |tail| {
            entries
                .len()
                .saturating_sub(usize::try_from(tail).unwrap_or(0))
        });
        entries[skip..]
            .iter()
            .map(|entry| self.render(entry))
            .collect()
    }

    /// How many bytes the client accepts in all (`limitBytes`).
    pub fn budget(&self) -> Budget {
        Budget(
            self.limit_bytes
                .map_or(usize::MAX, |limit| usize::try_from(limit).unwrap_or(0)),
        )
    }
}

/// What is left of `limitBytes`: output is cut at that many bytes, as a kubelet cuts it.
#[derive(Debug, Clone, Copy)]
pub struct Budget(usize);

impl Budget {
    /// `chunk`, cut to what is left; None once nothing is left.
    pub fn spend(&mut self, mut chunk: Vec<u8>) -> Option<Vec<u8>> {
        if self.0 == 0 {
            return None;
        }
        chunk.truncate(self.0);
        self.0 -= chunk.len();
        Some(chunk)
    }
}

/// How much of a live log is on disk, and whether its container has ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub bytes: u64,
    pub done: bool,
}

/// Every container log on this node, and the progress of those still being written.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    live: Arc<Mutex<HashMap<LogKey, LiveLog>>>,
}

/// A log being written by this process.
struct LiveLog {
    /// The pod it belongs to (a later pod may have the same name).
    uid: String,
    progress: watch::Receiver<Written>,
}

impl LogStore {
    pub fn new(dir: PathBuf) -> Self {
        LogStore {
            dir,
            live: Arc::default(),
        }
    }

    pub fn path(&self, key: &LogKey) -> PathBuf {
        self.dir
            .join(&key.namespace)
            .join(&key.pod)
            .join(format!("{}.log", key.container))
    }

    /// Starts a container's log for the pod with `uid` (replacing one of an earlier pod of the
    /// same name).
    pub async fn writer(&self, key: LogKey, uid: &str) -> std::io::Result<LogWriter> {
        let path = self.path(&key);
        let (progress, receiver) = watch::channel(Written::default());
        // Claimed before the file exists, so removing an earlier pod's logs leaves it alone.
        if let Ok(mut live) = self.live.lock() {
            let uid = uid.to_owned();
            live.insert(
                key,
                LiveLog {
                    uid,
                    progress: receiver,
                },
            );
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = tokio::fs::File::create(&path).await?;
        Ok(LogWriter {
            file,
            progress,
            written: 0,
        })
    }

    /// The progress of a log being written by this process; None for logs of an earlier run.
    pub fn progress(&self, key: &LogKey) -> Option<watch::Receiver<Written>> {
        self.live
            .lock()
            .ok()?
            .get(key)
            .map(|log| log.progress.clone())
    }

    /// Forgets a pod's logs once the pod is gone, as a kubelet does, unless a newer pod of
    /// the same name has started writing its own.
    pub fn remove_pod(&self, namespace: &str, pod: &str, uid: &str) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        let of_pod = |key: &LogKey| key.namespace == namespace && key.pod == pod;
        if live.iter().any(|(key, log)| of_pod(key) && log.uid != uid) {
            return;
        }
        live.retain(|key, _| !of_pod(key));
        let _ = std::fs::remove_dir_all(self.dir.join(namespace).join(pod));
    }
}

/// Appends lines to one container's log; followers hear of each line once it is on disk.
pub struct LogWriter {
    file: tokio::fs::File,
    progress: watch::Sender<Written>,
    written: u64,
}

impl LogWriter {
    async fn write(&mut self, line: &Line) -> std::io::Result<()> {
        let encoded = encode(line);
        self.file.write_all(&encoded).await?;
        self.file.flush().await?;
        self.written += encoded.len() as u64;
        let bytes = self.written;
        self.progress.send_modify(|written| written.bytes = bytes);
        Ok(())
    }

    /// Writes every line that arrives until all senders are gone, then marks the log complete.
    pub async fn drain(mut self, mut lines: mpsc::Receiver<Line>) {
        while let Some(line) = lines.recv().await {
            if let Err(error) = self.write(&line).await {
                tracing::warn!(%error, "could not write a log line");
            }
        }
        self.progress.send_modify(|written| written.done = true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &[u8] = b"2026-01-01T00:00:00Z stdout F first\n\
2026-01-01T00:00:10.5Z stderr F second line\n\
2026-01-01T00:00:20.123456789Z stdout F \n\
2026-01-01T00:00:25Z stdout F last\n";

    fn now() -> Timestamp {
        "2026-01-01T00:00:30Z".parse().expect("time")
    }

    fn text(lines: Vec<Vec<u8>>) -> Vec<String> {
        lines
            .into_iter()
            .map(|line| String::from_utf8_lossy(&line).into_owned())
            .collect()
    }

    #[test]
    fn a_line_is_stored_with_its_nanosecond_time_and_stream() {
        let line = Line {
            time: "2026-01-01T00:00:00.000000012Z".parse().expect("time"),
            stream: Stream::Stderr,
            text: b"oops".to_vec(),
        };

        let encoded = encode(&line);

        assert_eq!(encoded, b"2026-01-01T00:00:00.000000012Z stderr F oops\n");
        let entry = decode(&encoded[..encoded.len() - 1]).expect("decodes");
        assert_eq!(entry.time, "2026-01-01T00:00:00.000000012Z");
        assert_eq!(entry.text, b"oops");
    }

    #[test]
    fn text_keeps_its_spaces_and_bytes() {
        let entry = decode(b"2026-01-01T00:00:00Z stdout F  two  spaces \xff").expect("decodes");

        assert_eq!(entry.text, b" two  spaces \xff");
    }

    #[test]
    fn lines_lose_their_time_unless_timestamps_are_asked_for() {
        let plain = LogQuery::default().select(STORED, now());
        let stamped = LogQuery {
            timestamps: true,
            ..LogQuery::default()
        }
        .select(STORED, now());

        assert_eq!(text(plain), ["first\n", "second line\n", "\n", "last\n"]);
        assert_eq!(text(stamped)[1], "2026-01-01T00:00:10.5Z second line\n");
    }

    #[test]
    fn tail_lines_keeps_the_last_lines() {
        let query = LogQuery {
            tail_lines: Some(2),
            ..LogQuery::default()
        };
        let none = LogQuery {
            tail_lines: Some(0),
            ..LogQuery::default()
        };
        let more_than_there_are = LogQuery {
            tail_lines: Some(10),
            ..LogQuery::default()
        };

        assert_eq!(text(query.select(STORED, now())), ["\n", "last\n"]);
        assert!(none.select(STORED, now()).is_empty());
        assert_eq!(more_than_there_are.select(STORED, now()).len(), 4);
    }

    #[test]
    fn since_drops_older_lines() {
        let seconds = LogQuery {
            since_seconds: Some(15),
            ..LogQuery::default()
        };
        let time = LogQuery {
            since_time: Some("2026-01-01T00:00:10Z".parse().expect("time")),
            ..LogQuery::default()
        };

        assert_eq!(text(seconds.select(STORED, now())), ["\n", "last\n"]);
        assert_eq!(
            text(time.select(STORED, now())),
            ["second line\n", "\n", "last\n"]
        );
    }

    #[test]
    fn limit_bytes_cuts_the_output() {
        let mut budget = LogQuery {
            limit_bytes: Some(8),
            ..LogQuery::default()
        }
        .budget();

        assert_eq!(budget.spend(b"first\n".to_vec()), Some(b"first\n".to_vec()));
        assert_eq!(budget.spend(b"second\n".to_vec()), Some(b"se".to_vec()));
        assert_eq!(budget.spend(b"third\n".to_vec()), None);
    }

    #[test]
    fn the_kubelet_query_parameters_are_understood() {
        let query: LogQuery = serde_urlencoded_like(
            "follow=true&tailLines=3&timestamps=true&limitBytes=10&sinceTime=2026-01-01T00:00:00Z",
        );

        assert!(query.follow && query.timestamps);
        assert_eq!(query.tail_lines, Some(3));
        assert_eq!(query.limit_bytes, Some(10));
        assert!(query.since_time.is_some());
    }

    /// Decodes a query string the way axum's `Query` does.
    fn serde_urlencoded_like(query: &str) -> LogQuery {
        let uri: axum::http::Uri = format!("/?{query}").parse().expect("uri");
        axum::extract::Query::<LogQuery>::try_from_uri(&uri)
            .expect("query")
            .0
    }
}
