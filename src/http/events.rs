//! `GET /v1/events`: the state changes of the caller's submissions as Server-Sent Events, for
//! dashboards that would otherwise poll.
//!
//! The handler checks the request and where the stream starts; the stream itself is
//! [`super::event_stream`]'s. Live events come from the process's one reader
//! ([`super::event_feed`]), which reads each new page once, whatever replica committed it, and
//! hands it to every stream in memory; a stream keeps what its caller may see and asked for. A
//! stream reads the database only to catch up: from where its client resumes, or after falling
//! behind the feed (its client read too slowly). Both the feed's pages and a catching-up read
//! cover whole runs of revisions, and a stream takes only revisions past the last one it
//! handled, so it switches between them without a gap or a repeat, and every client sees every
//! revision in order. Each event's SSE `id` is its revision: a client that reconnects with
//! `Last-Event-ID` (or `?after=`) misses nothing, across restarts and replicas, as long as
//! retention has kept the events.

use std::convert::Infallible;
use std::str::FromStr;

use axum::extract::State as AppState;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use futures::Stream;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::event_stream::{Following, Held, Start};
use super::extract::QueryPairs;
use super::query_filters::{labels_asked, states_asked};
use super::responses::Unauthorized;
use crate::domain::{Caller, State, StateEvent, SubmissionId};
use crate::storage::EventFilter;

/// Submission ids one stream may name.
const MAX_IDS: usize = 100;
/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "last-event-id";

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
        Unauthorized,
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
    let stream = Following::new(
        context.store.clone(),
        feed,
        filter,
        start,
        context.event_streams,
        context.shutdown.clone(),
        Held {
            slot,
            open: context.http_metrics.event_stream_opened(),
        },
    );
    Ok(Sse::new(stream.events()))
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
