//! Log follows shared per pod: however many users follow one pod, the API server streams its
//! log once.
//!
//! The first follower of a pod opens the upstream stream (from the start, with timestamps); its
//! lines go into a bounded history and a broadcast. A follower joining later gets what it asked
//! for from the history (all of it, or its `tail_lines`), then the live lines, with the
//! timestamps removed unless it wants them. A follower that falls further behind than the
//! broadcast holds is ended with a line that says so, and never slows the others. When the last
//! follower goes, the upstream is closed. A follower that wants more than the history still
//! holds gets a stream of its own, as before.
//!
//! Nothing here knows the API server: the follower that opens the upstream hands in the
//! stream to share ([`super::logs::open`] does).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{AsyncBufRead, AsyncBufReadExt as _, StreamExt as _};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::error::ClusterError;

/// How much of a followed pod's log is kept for followers who join later.
const HISTORY_BYTES: usize = 1024 * 1024;
/// Lines a follower may fall behind the upstream before it is ended.
const BEHIND_LINES: usize = 4096;

/// The upstream streams open now, by pod.
#[derive(Clone, Default)]
pub struct SharedLogs {
    pods: Arc<Mutex<HashMap<String, Weak<Upstream>>>>,
    /// One opening at a time per pod, so followers arriving together open one stream.
    opening: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// One pod's log as the followers share it. Dropped with its last follower, which stops the
/// task reading the API server's stream.
pub struct Upstream {
    shared: Mutex<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Shared {
    history: VecDeque<Bytes>,
    history_bytes: usize,
    /// Whether the history lost its start.
    dropped: bool,
    /// `None` once the upstream ended: followers end after the last line.
    sender: Option<broadcast::Sender<Bytes>>,
}

impl Shared {
    fn push(&mut self, line: Bytes) {
        self.history_bytes += line.len();
        self.history.push_back(line.clone());
        while self.history_bytes > HISTORY_BYTES {
            match self.history.pop_front() {
                Some(old) => {
                    self.history_bytes -= old.len();
                    self.dropped = true;
                }
                None => break,
            }
        }
        if let Some(sender) = &self.sender {
            // No receiver is fine: a follower may be between leaving and the abort.
            let _ = sender.send(line);
        }
    }
}

impl SharedLogs {
    /// A follow of `pod`'s payload log (its last `tail_lines`, with `timestamps` or not),
    /// sharing the pod's upstream stream; `None` if it wants more of the log than a shared
    /// stream still holds. `open` is the upstream if none is open yet: the whole log, followed,
    /// with timestamps.
    pub async fn follow<R>(
        &self,
        pod: &str,
        tail_lines: Option<i64>,
        timestamps: bool,
        open: impl Future<Output = Result<R, ClusterError>>,
    ) -> Result<Option<BoxStream<'static, std::io::Result<Bytes>>>, ClusterError>
    where
        R: AsyncBufRead + Send + 'static,
    {
        let upstream = match self.existing(pod) {
            Some(upstream) => upstream,
            None => self.open(pod, open).await?,
        };
        Ok(subscribe(upstream, tail_lines, timestamps))
    }

    fn existing(&self, pod: &str) -> Option<Arc<Upstream>> {
        self.pods.lock().get(pod).and_then(Weak::upgrade)
    }

    /// Opens the upstream, unless a follower who arrived at the same time already did.
    async fn open<R>(
        &self,
        pod: &str,
        open: impl Future<Output = Result<R, ClusterError>>,
    ) -> Result<Arc<Upstream>, ClusterError>
    where
        R: AsyncBufRead + Send + 'static,
    {
        let turn = self
            .opening
            .lock()
            .entry(pod.to_owned())
            .or_default()
            .clone();
        let opened = {
            let _turn = turn.lock().await;
            match self.existing(pod) {
                Some(upstream) => Ok(upstream),
                None => self.open_now(pod, open).await,
            }
        };
        let mut opening = self.opening.lock();
        if opening
            .get(pod)
            .is_some_and(|turn| Arc::strong_count(turn) <= 2)
        {
            opening.remove(pod);
        }
        opened
    }

    async fn open_now<R>(
        &self,
        pod: &str,
        open: impl Future<Output = Result<R, ClusterError>>,
    ) -> Result<Arc<Upstream>, ClusterError>
    where
        R: AsyncBufRead + Send + 'static,
    {
        let upstream = Upstream::start(open.await?);
        let mut pods = self.pods.lock();
        pods.retain(|_, upstream| upstream.strong_count() > 0);
        pods.insert(pod.to_owned(), Arc::downgrade(&upstream));
        Ok(upstream)
    }
}

impl Upstream {
    /// Starts reading `reader` line by line into a new shared upstream.
    pub fn start(reader: impl AsyncBufRead + Send + 'static) -> Arc<Upstream> {
        let (sender, _) = broadcast::channel(BEHIND_LINES);
        Arc::new_cyclic(|this: &Weak<Upstream>| {
            let this = this.clone();
            let reader = tokio::spawn(async move {
                let mut reader = std::pin::pin!(reader);
                loop {
                    let mut line = Vec::new();
                    let read = reader.read_until(b'\n', &mut line).await;
                    let Some(upstream) = this.upgrade() else {
                        return;
                    };
                    let mut shared = upstream.shared.lock();
                    match read {
                        Ok(0) | Err(_) => {
                            shared.sender = None;
                            return;
                        }
                        Ok(_) => shared.push(Bytes::from(line)),
                    }
                }
            });
            Upstream {
                shared: Mutex::new(Shared {
                    history: VecDeque::new(),
                    history_bytes: 0,
                    dropped: false,
                    sender: Some(sender),
                }),
                reader,
            }
        })
    }
}

/// The last `tail_lines` of `upstream` (all it has, if `None`) from its history, then its
/// live lines; `None` if the history lost part of what is wanted.
pub fn subscribe(
    upstream: Arc<Upstream>,
    tail_lines: Option<i64>,
    timestamps: bool,
) -> Option<BoxStream<'static, std::io::Result<Bytes>>> {
    let (backlog, receiver) = {
        let shared = upstream.shared.lock();
        let wanted = match tail_lines {
            Some(lines) => usize::try_from(lines).unwrap_or(usize::MAX),
            None if shared.dropped => return None,
            None => usize::MAX,
        };
        let skip = shared.history.len().saturating_sub(wanted);
        let backlog: Vec<Bytes> = shared.history.iter().skip(skip).cloned().collect();
        (
            backlog,
            shared.sender.as_ref().map(broadcast::Sender::subscribe),
        )
    };
    let live = futures::stream::unfold((receiver, upstream), |(receiver, upstream)| async move {
        let mut receiver = receiver?;
        match receiver.recv().await {
            Ok(line) => Some((line, (Some(receiver), upstream))),
            Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some((Bytes::from(fell_behind(missed)), (None, upstream)))
            }
        }
    });
    let lines = futures::stream::iter(backlog).chain(live).map(move |line| {
        Ok(if timestamps {
            line
        } else {
            without_timestamp(line)
        })
    });
    Some(lines.boxed())
}

/// The last line of a follow that fell too far behind.
pub fn fell_behind(missed: u64) -> String {
    format!(
        "[submission-helper: this follow fell {missed} lines behind the log and was ended; \
         follow again with tail_lines to resume]\n"
    )
}

/// A line without the RFC 3339 time and the space the API server put before it.
fn without_timestamp(line: Bytes) -> Bytes {
    match line.iter().position(|byte| *byte == b' ') {
        Some(space) if line.first().is_some_and(u8::is_ascii_digit) => line.slice(space + 1..),
        _ => line,
    }
}

/// The sharing itself, fed from an in-memory log instead of the API server (whose log streams
/// cannot be paused or flooded on demand); the end-to-end suite follows real pods.
#[cfg(test)]
mod tests {
    use super::*;

    use futures::channel::mpsc;
    use futures::{SinkExt, TryStreamExt};

    fn line(n: usize) -> String {
        format!("2026-01-01T00:00:00.{n:09}Z line {n}\n")
    }

    /// An upstream fed line by line through the returned sender.
    fn fed() -> (mpsc::Sender<std::io::Result<Vec<u8>>>, Arc<Upstream>) {
        let (sender, receiver) = mpsc::channel(16);
        let upstream = Upstream::start(receiver.into_async_read());
        (sender, upstream)
    }

    async fn send(sender: &mut mpsc::Sender<std::io::Result<Vec<u8>>>, n: usize) {
        sender
            .send(Ok(line(n).into_bytes()))
            .await
            .expect("upstream open");
    }

    async fn collect(stream: BoxStream<'static, std::io::Result<Bytes>>) -> String {
        let bytes: Vec<Bytes> = stream.try_collect().await.expect("lines");
        String::from_utf8(bytes.concat()).expect("utf-8")
    }

    async fn settle(upstream: &Arc<Upstream>, lines: usize) {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while upstream.shared.lock().history.len() < lines {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the upstream read the lines");
    }

    #[tokio::test]
    async fn a_late_follower_gets_the_log_so_far_then_the_same_live_lines() {
        let (mut sender, upstream) = fed();
        let first = subscribe(upstream.clone(), None, false).expect("stream");
        send(&mut sender, 1).await;
        settle(&upstream, 1).await;
        let late = subscribe(upstream.clone(), Some(1), true).expect("stream");
        send(&mut sender, 2).await;
        drop(sender);
        drop(upstream);

        assert_eq!(collect(first).await, "line 1\nline 2\n");
        assert_eq!(collect(late).await, format!("{}{}", line(1), line(2)));
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_is_ended_and_the_others_get_every_line() {
        let (mut sender, upstream) = fed();
        let slow = subscribe(upstream.clone(), None, false).expect("stream");
        let mut fast = subscribe(upstream.clone(), None, false).expect("stream");
        let total = BEHIND_LINES + 10;
        let reading = tokio::spawn(async move {
            let mut lines = 0;
            while let Some(chunk) = fast.next().await {
                lines += chunk.expect("line").iter().filter(|b| **b == b'\n').count();
            }
            lines
        });
        for n in 0..total {
            send(&mut sender, n).await;
        }
        drop(sender);
        drop(upstream);

        assert_eq!(reading.await.expect("reader"), total);
        assert_eq!(collect(slow).await, fell_behind(10));
    }

    #[tokio::test]
    async fn a_follower_that_wants_more_than_the_history_holds_is_not_shared() {
        let (mut sender, upstream) = fed();
        let long = "x".repeat(64 * 1024);
        for _ in 0..(HISTORY_BYTES / long.len() + 1) {
            sender
                .send(Ok(format!("2026-01-01T00:00:00Z {long}\n").into_bytes()))
                .await
                .expect("open");
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !upstream.shared.lock().dropped {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("history full");

        assert!(subscribe(upstream.clone(), None, false).is_none());
        assert!(subscribe(upstream, Some(2), false).is_some());
    }
}
