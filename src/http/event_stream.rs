//! One event stream of `GET /v1/events` once its request was checked: where it starts, what
//! it takes from the process's feed and what it reads from the database to catch up, and how
//! it keeps a quiet connection alive. The decisions that need no I/O are plain functions at
//! the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures::{Stream, StreamExt as _};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::event_feed::{FeedPage, Subscription};
use super::follows::FollowSlot;
use super::request_metrics::OpenEventStream;
use crate::domain::StateEvent;
use crate::storage::{Event, EventFilter, Store};

/// Events read from the database at a time.
const PAGE: u32 = 500;

/// How streams wait: for other replicas' commits, and before a keep-alive.
#[derive(Debug, Clone, Copy)]
pub struct EventStreams {
    /// How often the process reads the newest revision, to wake its streams for other
    /// replicas' commits.
    pub poll: Duration,
    /// How long a stream stays silent before it sends a comment, so proxies and clients can
    /// tell a quiet stream from a dead connection.
    pub keep_alive: Duration,
    /// Pages of new events the process's feed keeps for streams that have not taken them yet;
    /// a stream further behind (its client reads slowly) reads what it missed from the
    /// database.
    pub feed_buffer: usize,
}

impl Default for EventStreams {
    fn default() -> Self {
        EventStreams {
            poll: Duration::from_secs(1),
            keep_alive: Duration::from_secs(15),
            feed_buffer: 256,
        }
    }
}

/// Where a stream starts.
pub enum Start {
    /// At the present: the newest revision.
    Now(i64),
    /// After a revision the client had.
    After(i64),
}

impl Start {
    fn position(&self) -> i64 {
        match self {
            Start::Now(revision) | Start::After(revision) => *revision,
        }
    }
}

/// One open stream: where it is, and what it has read but not sent yet.
pub struct Following {
    store: Store,
    feed: Subscription,
    /// A page of the feed that starts past `position`: kept until the stream has caught up
    /// to it from the database.
    held: Option<Arc<FeedPage>>,
    filter: EventFilter,
    /// Every revision up to here was handled (sent, or left out by the filter).
    position: i64,
    /// The last revision the client was given as an `id` (an event's, or a bare position).
    sent: i64,
    ready: VecDeque<Event>,
    settings: EventStreams,
    shutdown: CancellationToken,
    /// When the stream last sent something.
    quiet_since: Instant,
    /// The present, for a stream that starts there.
    announce: Option<i64>,
    /// Counted while the stream is open.
    _held: Held,
}

/// What counts a stream while it is open: against its user's cap of follows, and in
/// `/metrics`.
pub struct Held {
    pub slot: FollowSlot,
    pub open: OpenEventStream,
}

/// What a stream does next when it has nothing ready to send.
enum Step {
    /// Read the database from its position: it is behind the feed.
    CatchUp,
    /// Take these events of a page that starts at or before its position.
    Take(Arc<FeedPage>),
    /// Wait for the feed.
    Wait,
}

impl Following {
    /// A stream from `start` of the events `filter` lets through.
    pub fn new(
        store: Store,
        feed: Subscription,
        filter: EventFilter,
        start: Start,
        settings: EventStreams,
        shutdown: CancellationToken,
        held: Held,
    ) -> Self {
        Following {
            store,
            feed,
            held: None,
            filter,
            position: start.position(),
            sent: start.position(),
            ready: VecDeque::new(),
            settings,
            shutdown,
            quiet_since: Instant::now(),
            announce: match start {
                Start::Now(latest) => Some(latest),
                Start::After(_) => None,
            },
            _held: held,
        }
    }

    /// The stream's SSE events. A stream without a position first says where the present is
    /// (a bare `id`), so a client that loses the connection before any change resumes from
    /// there.
    pub fn events(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        let first = self
            .announce
            .map(|latest| Ok(SseEvent::default().id(latest.to_string())));
        let rest = futures::stream::unfold(self, |mut following| async move {
            following.next().await.map(|event| (Ok(event), following))
        });
        futures::stream::iter(first).chain(rest)
    }

    /// The next thing to send, or `None` when the stream ends (the service stops, the
    /// database failed, the events it needs were pruned: the client resumes from its last
    /// `id`).
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.sent = event.revision;
                self.quiet_since = Instant::now();
                let event = StateEvent::from(event);
                let sse = SseEvent::default()
                    .event("state")
                    .id(event.revision.to_string());
                return match sse.json_data(&event) {
                    Ok(sse) => Some(sse),
                    Err(error) => {
                        tracing::error!(%error, "could not encode an event");
                        None
                    }
                };
            }
            match self.step() {
                Step::CatchUp => {
                    if !self.catch_up().await {
                        return None;
                    }
                }
                Step::Take(page) => {
                    if !self.take(&page) {
                        return None;
                    }
                }
                Step::Wait => {
                    if let Some(comment) = self.wait().await? {
                        return Some(comment);
                    }
                }
            }
        }
    }

    /// Decides from the feed, without waiting, what to do next.
    fn step(&mut self) -> Step {
        loop {
            let page = match self.held.take() {
                Some(page) => page,
                None => {
                    // Read before the channel: the reader sends a page before it moves
                    // `through` past it, so a page counted here is in the channel already.
                    let through = *self.feed.through.borrow_and_update();
                    match self.feed.pages.try_recv() {
                        Ok(page) => page,
                        // Fell behind the buffer: what it missed is read from the database.
                        Err(broadcast::error::TryRecvError::Lagged(pages)) => {
                            tracing::debug!(
                                pages,
                                "an event stream fell behind the feed; catching up"
                            );
                            continue;
                        }
                        // Nothing new on the feed: behind it only if the feed moved on before
                        // the stream subscribed.
                        Err(_) if self.position < through => return Step::CatchUp,
                        Err(_) => return Step::Wait,
                    }
                }
            };
            match placement(&page, self.position) {
                Placement::Behind => continue,
                Placement::Ahead => {
                    self.held = Some(page);
                    return Step::CatchUp;
                }
                Placement::Covers => return Step::Take(page),
            }
        }
    }

    /// Reads one page from the database after `position`; false if the stream must end.
    async fn catch_up(&mut self) -> bool {
        let page = match self
            .store
            .events_after(self.position, &self.filter, PAGE)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "an event stream could not read; ending it");
                return false;
            }
        };
        if page.pruned {
            // Left behind by retention: ended, so the client's reconnect is told (410).
            tracing::info!(
                position = self.position,
                "an event stream fell behind retention"
            );
            return false;
        }
        self.position = self.position.max(page.through);
        self.ready.extend(page.events);
        true
    }

    /// Takes the events of `page` past `position` that the filter lets through; false if the
    /// stream must end.
    fn take(&mut self, page: &FeedPage) -> bool {
        let Some(taken) = taken(page, self.position, &self.filter) else {
            tracing::info!(
                position = self.position,
                "an event stream fell behind retention"
            );
            return false;
        };
        self.ready.extend(taken);
        self.position = page.through;
        true
    }

    /// Waits for the feed to move; `Some(comment)` when the stream has been quiet long
    /// enough to send a keep-alive, `None` (the outer) when it must end.
    async fn wait(&mut self) -> Option<Option<SseEvent>> {
        let keep_alive = self.quiet_since + self.settings.keep_alive;
        tokio::select! {
            () = self.shutdown.cancelled() => None,
            received = self.feed.pages.recv() => match received {
                Ok(page) => {
                    self.held = Some(page);
                    Some(None)
                }
                Err(broadcast::error::RecvError::Lagged(pages)) => {
                    tracing::debug!(pages, "an event stream fell behind the feed; catching up");
                    Some(None)
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            changed = self.feed.through.changed() => changed.ok().map(|()| None),
            () = tokio::time::sleep_until(keep_alive) => {
                self.quiet_since = Instant::now();
                let mut comment = SseEvent::default().comment("keep-alive");
                if let Some(position) = keep_alive_id(self.sent, self.position) {
                    self.sent = position;
                    comment = comment.id(position.to_string());
                }
                Some(Some(comment))
            }
        }
    }
}

/// Where a page of the feed stands against a stream's position.
#[derive(Debug, PartialEq, Eq)]
enum Placement {
    /// Every revision of it was handled already.
    Behind,
    /// It starts past the position: the revisions between are read from the database first.
    Ahead,
    /// It holds the revision after the position.
    Covers,
}

fn placement(page: &FeedPage, position: i64) -> Placement {
    if page.through <= position {
        Placement::Behind
    } else if page.after > position {
        Placement::Ahead
    } else {
        Placement::Covers
    }
}

/// The events of `page` past `position` that `filter` lets through; `None` when retention
/// deleted revisions past `position` before the feed read them, so the stream must end.
fn taken(page: &FeedPage, position: i64, filter: &EventFilter) -> Option<Vec<Event>> {
    if position < page.gone_through {
        return None;
    }
    Some(
        page.events
            .iter()
            .filter(|event| event.revision > position && filter.matches(event))
            .cloned()
            .collect(),
    )
}

/// The `id` a keep-alive carries: the position, when it moved past the last `id` sent (past
/// changes the filters left out), so a client that resumes does not read them again.
fn keep_alive_id(sent: i64, position: i64) -> Option<i64> {
    (sent != position).then_some(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{State, SubmissionId};

    fn event(revision: i64, owner: &str) -> Event {
        Event {
            revision,
            id: SubmissionId::new(),
            owner: owner.into(),
            name: None,
            labels: Default::default(),
            previous: Some(State::Queued),
            state: State::Running,
            message: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn page(after: i64, through: i64, owners: &[&str]) -> FeedPage {
        FeedPage {
            after,
            through,
            events: owners
                .iter()
                .zip(after + 1..)
                .map(|(owner, revision)| event(revision, owner))
                .collect(),
            gone_through: 0,
        }
    }

    #[test]
    fn a_page_is_behind_ahead_of_or_covering_the_position() {
        let page = page(10, 20, &[]);

        assert_eq!(placement(&page, 20), Placement::Behind);
        assert_eq!(placement(&page, 25), Placement::Behind);
        assert_eq!(placement(&page, 9), Placement::Ahead);
        assert_eq!(placement(&page, 10), Placement::Covers);
        assert_eq!(placement(&page, 15), Placement::Covers);
    }

    #[test]
    fn a_stream_takes_only_the_revisions_past_its_position_that_its_filter_lets_through() {
        let page = page(10, 14, &["alice", "bob", "alice", "alice"]);
        let alices = EventFilter {
            owner: Some("alice".into()),
            ..EventFilter::default()
        };

        let taken = taken(&page, 11, &alices).expect("not pruned");

        let revisions: Vec<_> = taken.iter().map(|event| event.revision).collect();
        assert_eq!(revisions, [13, 14]);
    }

    #[test]
    fn a_stream_behind_what_retention_deleted_takes_nothing_and_ends() {
        let mut pruned = page(10, 12, &["alice", "alice"]);
        pruned.gone_through = 11;

        assert!(taken(&pruned, 10, &EventFilter::default()).is_none());
        assert!(taken(&pruned, 11, &EventFilter::default()).is_some());
    }

    #[test]
    fn a_keep_alive_carries_the_position_only_when_it_moved_past_the_last_id_sent() {
        assert_eq!(keep_alive_id(7, 7), None);
        assert_eq!(keep_alive_id(7, 9), Some(9));
    }
}
