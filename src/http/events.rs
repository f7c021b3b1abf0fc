//! `GET /v1/events`: the state changes of the caller's submissions as Server-Sent Events, for
//! dashboards that would otherwise poll.
//!
//! Live events come from the process's one reader ([`super::event_feed`]), which reads each new
//! page once, whatever replica committed it, and hands it to every stream in memory; a stream
//! keeps what its caller may see and asked for. A stream reads the database only to catch up:
//! from where its client resumes, or after falling behind the feed (its client read too
//! slowly). Both the feed's pages and a catching-up read cover whole runs of revisions, and a
//! stream takes only revisions past the last one it handled, so it switches between them
//! without a gap or a repeat, and every client sees every revision in order. Each event's SSE
//! `id` is its revision: a client that reconnects with `Last-Event-ID` (or `?after=`) misses
//! nothing, across restarts and replicas, as long as retention has kept the events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AppState;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use futures::{Stream, StreamExt as _};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::event_feed::{FeedPage, Subscription};
use super::extract::QueryPairs;
use super::follows::FollowSlot;
use super::request_metrics::OpenEventStream;
use super::submissions::{labels_asked, states_asked};
use crate::domain::{Caller, State, StateEvent, SubmissionId};
use crate::storage::{Event, EventFilter, Store};

/// Events read from the database at a time.
const PAGE: u32 = 500;
/// Submission ids one stream may name.
const MAX_IDS: usize = 100;
/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

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

/// A live stream of state changes (Server-Sent Events).
///
/// One `state` event per change of state of a submission the caller may see (their own; an
/// admin's stream has everyone's), oldest first, each with its revision as the SSE `id`.
/// Without a position the stream starts at the present, and first sends the current revision
/// as a bare `id` line. With `Last-Event-ID` (which wins) or `after`, it first sends every
/// change after that revision. A comment line is sent when the stream has been quiet for 15
/// seconds. Resume with the same filters: the `id` may move past changes they left out.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "submissions",
    params(
        ("state" = Option<Vec<State>>, Query, description = "Only changes into these states; repeat or separate with commas"),
        ("label" = Option<Vec<String>>, Query, description = "`key=value`; repeat to require several labels", pattern = "^[^=]+=.*$"),
        ("id" = Option<Vec<String>>, Query, description = "Only these submissions (at most 100); repeat or separate with commas"),
        ("after" = Option<i64>, Query, description = "Resume after this revision", minimum = 0),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this revision (wins over `after`)"),
    ),
    responses(
        (status = 401, description = "No token, or an unknown or revoked one", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "`state` events, each with its revision as `id` and a `StateEvent` as `data`", body = StateEvent, content_type = "text/event-stream"),
        (status = 400, description = "A query parameter or `Last-Event-ID` is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The events after the revision asked for were pruned (kept 7 days); read the submissions again and start without a position", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The revision asked for is past the newest one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The token's user has as many streams and log follows open as allowed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn events(
    AppState(context): AppState<Context>,
    caller: Caller,
    headers: HeaderMap,
    query: QueryPairs,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    query.only(&["state", "label", "id", "after"])?;
    let filter = EventFilter {
        owner: (!caller.admin).then(|| caller.user.clone()),
        ids: ids_asked(&query)?,
        states: states_asked(&query)?,
        labels: labels_asked(&query)?,
    };
    let asked = match headers.get(LAST_EVENT_ID) {
        Some(value) => Some((
            "Last-Event-ID",
            value
                .to_str()
                .ok()
                .and_then(|text| revision(text.trim()))
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID", "must be a revision: a whole number")
                })?,
        )),
        None => query
            .single("after")?
            .map(|text| {
                revision(text).map(|after| ("after", after)).ok_or_else(|| {
                    ApiError::bad_request("after", "must be a revision: a whole number")
                })
            })
            .transpose()?,
    };
    // Subscribed before the start is read, so every page sent after it reaches this stream.
    let feed = context.event_feed.subscribe();
    let revisions = context.store.revisions().await?;
    let start = match asked {
        None => Start::Now(revisions.latest),
        Some((field, after)) if after > revisions.latest => {
            return Err(ApiError::invalid(
                field,
                format!(
                    "is past the newest revision, {}: it did not come from this service's database",
                    revisions.latest
                ),
            ));
        }
        Some((_, after)) if after < revisions.pruned => {
            return Err(ApiError::EventsPruned(format!(
                "the events after revision {after} were pruned (up to revision {}); read the \
                 submissions again and follow the stream without a position",
                revisions.pruned
            )));
        }
        Some((_, after)) => Start::After(after),
    };
    let slot = context
        .follows
        .take(&caller.submitted_by)
        .ok_or(ApiError::TooManyFollows(context.follows.limit()))?;
    // A stream without a position first says where the present is, so a client that loses
    // the connection before any change resumes from there.
    let first = match start {
        Start::Now(latest) => Some(Ok(SseEvent::default().id(latest.to_string()))),
        Start::After(_) => None,
    };
    let following = Following {
        store: context.store.clone(),
        feed,
        held: None,
        filter,
        position: start.position(),
        sent: start.position(),
        ready: VecDeque::new(),
        settings: context.event_streams,
        shutdown: context.shutdown.clone(),
        quiet_since: Instant::now(),
        _slot: slot,
        _open: context.http_metrics.event_stream_opened(),
    };
    let rest = futures::stream::unfold(following, |mut following| async move {
        following.next().await.map(|event| (Ok(event), following))
    });
    Ok(Sse::new(futures::stream::iter(first).chain(rest)))
}

/// Where a stream starts.
enum Start {
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

fn revision(text: &str) -> Option<i64> {
    i64::from_str(text).ok().filter(|revision| *revision >= 0)
}

fn ids_asked(query: &QueryPairs) -> ApiResult<Vec<SubmissionId>> {
    let ids = query
        .all("id")
        .flat_map(|value| value.split(','))
        .map(|text| {
            SubmissionId::from_str(text.trim()).map_err(|_| {
                ApiError::bad_request("id", format!("{text:?} is not a submission id"))
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(
            "id",
            format!(
                "names {} submissions; at most {MAX_IDS} may be followed",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// One open stream: where it is, and what it has read but not sent yet.
struct Following {
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
    /// Counts against the user's cap of follows until the stream ends.
    _slot: FollowSlot,
    /// Counts in `/metrics` until the stream ends.
    _open: OpenEventStream,
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
            if page.through <= self.position {
                continue;
            }
            if page.after > self.position {
                self.held = Some(page);
                return Step::CatchUp;
            }
            return Step::Take(page);
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
        if self.position < page.gone_through {
            tracing::info!(
                position = self.position,
                "an event stream fell behind retention"
            );
            return false;
        }
        let position = self.position;
        self.ready.extend(
            page.events
                .iter()
                .filter(|event| event.revision > position && self.filter.matches(event))
                .cloned(),
        );
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
                // The position moves past changes the filters left out, so a client that
                // resumes does not read them again.
                if self.sent != self.position {
                    self.sent = self.position;
                    comment = comment.id(self.position.to_string());
                }
                Some(Some(comment))
            }
        }
    }
}
