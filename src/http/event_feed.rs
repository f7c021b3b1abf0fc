//! The process's one reader of new events, and the live feed it hands to every open stream.
//!
//! Each new page of events is read from the database once, by [`EventFeed::run`], woken by this
//! process's commits and by the watcher of other replicas' ([`Store::watch_other_replicas`]).
//! Pages go out on a broadcast channel as shared [`FeedPage`]s, each covering the revisions
//! just after the previous one's, and each stream filters them in memory for its caller. A
//! stream reads the database itself only to catch up: from the revision a client resumes
//! after, or when it fell behind the channel's buffer (a slow client). Sending never waits for
//! a stream, so a slow client holds up nobody but itself. With no stream open, nothing is read
//! at all: each commit tells the feed the newest revision it committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::storage::{Event, EventFilter, Store};

/// Events the reader reads at a time.
const PAGE: u32 = 500;
/// How long the reader waits before trying again after the database failed it.
const RETRY: Duration = Duration::from_secs(1);

/// Every event in the revisions `after + 1 ..= through`, oldest first.
#[derive(Debug)]
pub struct FeedPage {
    pub after: i64,
    pub through: i64,
    pub events: Vec<Event>,
    /// Retention deleted the revisions up to this one before the reader read them (0: none
    /// of this page's): a stream that had not passed it ends, as when it finds a hole itself.
    pub gone_through: i64,
}

/// The live feed: shared by every stream of the process (cloning shares it).
#[derive(Clone)]
pub struct EventFeed {
    pages: broadcast::Sender<Arc<FeedPage>>,
    /// Every revision up to this one was sent on `pages` (0 until the reader first read the
    /// counter).
    through: watch::Sender<i64>,
}

/// One stream's view of the feed. Made before the stream decides where it starts, so nothing
/// sent after that is missed.
pub struct Subscription {
    pub pages: broadcast::Receiver<Arc<FeedPage>>,
    pub through: watch::Receiver<i64>,
}

impl EventFeed {
    /// A feed that keeps `buffered` pages for streams that have not taken them yet.
    pub fn new(buffered: usize) -> Self {
        EventFeed {
            pages: broadcast::Sender::new(buffered.max(1)),
            through: watch::Sender::new(0),
        }
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            pages: self.pages.subscribe(),
            through: self.through.subscribe(),
        }
    }

    /// Reads each new page of events once and sends it to the streams; runs until dropped.
    pub async fn run(self, store: Store) {
        let mut wakes = store.event_wakes();
        let mut position = loop {
            match store.revisions().await {
                Ok(revisions) => break revisions.latest,
                Err(error) => {
                    tracing::warn!(%error, "the event feed could not read the newest revision");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        self.through.send_replace(position);
        let everything = EventFilter::default();
        loop {
            // Marked seen before reading, so a commit during the read wakes the wait below.
            let committed = *wakes.borrow_and_update();
            if self.pages.receiver_count() == 0 {
                // Nobody listens: no page is read (under a burst of submissions that would be
                // a read of every new event and its labels per commit), and how far the feed
                // is comes with the wake. A stream subscribing meanwhile finds itself behind
                // `through` and reads what it needs from the database, as after falling
                // behind.
                if committed > position {
                    position = committed;
                    self.through.send_replace(position);
                }
                if wakes.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let page = match store.events_after(position, &everything, PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "the event feed could not read; trying again");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if page.through > position {
                let gone_through = if page.pruned {
                    // Only a stream that had not passed the pruned ones misses anything.
                    match store.revisions().await {
                        Ok(revisions) => revisions.pruned,
                        Err(_) => page.through,
                    }
                } else {
                    0
                };
                // No stream listening is no error: the page is simply not needed.
                let _ = self.pages.send(Arc::new(FeedPage {
                    after: position,
                    through: page.through,
                    events: page.events,
                    gone_through,
                }));
                position = page.through;
                self.through.send_replace(position);
            }
            if page.more {
                continue;
            }
            if wakes.changed().await.is_err() {
                return;
            }
        }
    }
}
