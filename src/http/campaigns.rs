//! Campaigns: the caller's submissions grouped by the value of a label (`campaign` unless
//! another is named), with how many are in each state, for the page's progress bars; and how
//! many started, succeeded and failed in each minute of the last hour, for its chart.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State as AppState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
use super::query_filters::labels_asked;
use super::responses::Unauthorized;
use crate::domain::{Caller, State, kube_rules};

/// The label a campaign is told by unless the request names another.
pub const DEFAULT_LABEL: &str = "campaign";
/// The most groups in one answer.
const MAX_GROUPS: i64 = 1000;

/// The groups of one label's values.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignList {
    /// The label key the submissions are grouped by.
    #[schema(example = "campaign")]
    pub label: String,
    /// One per value of the label, by value (at most 1,000).
    pub items: Vec<Campaign>,
}

/// The submissions with one value of the label, counted by state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    #[schema(example = "mc16e")]
    pub value: String,
    pub total: i64,
    /// Every state, with how many of the group are in it (0 included).
    #[schema(example = json!({"waiting": 1, "queued": 0, "pending": 0, "running": 3,
        "succeeded": 17, "failed": 2, "cancelled": 0}))]
    pub states: BTreeMap<String, i64>,
}

/// Campaigns: the caller's submissions grouped by a label's value, counted by state.
///
/// Only the caller's own, admins' too: what a bulk rerun or cancel of a group acts on. Each
/// change of state is also on `/v1/events`, for a page that keeps the counts live.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "submissions",
    params(
        ("label" = Option<String>, Query, description = "The label key to group by (default `campaign`)"),
    ),
    responses(
        Unauthorized,
        (status = 200, body = CampaignList),
        (status = 400, description = "`label` is not a label key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn campaigns(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<CampaignList>> {
    query.only(&["label"])?;
    let label = query.single("label")?.unwrap_or(DEFAULT_LABEL).to_owned();
    kube_rules::label_key(&label).map_err(|reason| ApiError::bad_request("label", reason))?;
    let groups = context
        .store
        .groups(&label, Some(&caller.user), MAX_GROUPS)
        .await?;
    let items = groups
        .into_iter()
        .map(|group| {
            let mut states: BTreeMap<String, i64> = State::ALL
                .iter()
                .map(|state| (state.as_str().to_owned(), 0))
                .collect();
            for (state, count) in &group.states {
                states.insert(state.as_str().to_owned(), *count);
            }
            Campaign {
                value: group.value,
                total: group.states.iter().map(|(_, count)| count).sum(),
                states,
            }
        })
        .collect();
    Ok(Json(CampaignList { label, items }))
}

/// The longest window of `GET /v1/throughput`: a day.
const MAX_MINUTES: u32 = 24 * 60;

/// Starts and ends per minute.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Throughput {
    /// Each minute of the window, oldest first, none left out.
    pub minutes: Vec<Minute>,
}

/// What happened in one minute.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Minute {
    /// The minute's start.
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    /// Submissions whose payload started running (again, after an eviction).
    pub started: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// How many of the caller's submissions started, succeeded and failed in each minute of the
/// last `minutes`, from their recorded changes of state.
#[utoipa::path(
    get,
    path = "/v1/throughput",
    tag = "submissions",
    params(
        ("minutes" = Option<u32>, Query, description = "The window, 1 to 1440 minutes (default 60)", minimum = 1, maximum = 1440),
        ("label" = Option<String>, Query, description = "`key=value`: only submissions with this label (a campaign's)", pattern = "^[^=]+=.*$"),
    ),
    responses(
        Unauthorized,
        (status = 200, body = Throughput),
        (status = 400, description = "A query parameter is malformed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn throughput(
    AppState(context): AppState<Context>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Json<Throughput>> {
    query.only(&["minutes", "label"])?;
    let minutes = i64::from(query.number("minutes", 1..=MAX_MINUTES)?.unwrap_or(60));
    let label = labels_asked(&query)?.into_iter().next();
    let now_minute = jiff::Timestamp::now().as_second().div_euclid(60);
    let first = now_minute - minutes + 1;
    let since = jiff::Timestamp::from_second(first * 60)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let counted = context
        .store
        .throughput(Some(&caller.user), label.as_ref(), since)
        .await?;
    let minutes = (first..=now_minute)
        .map(|minute| {
            let of = |wanted: State| {
                counted
                    .get(&minute)
                    .and_then(|states| states.iter().find(|(state, _)| *state == wanted))
                    .map_or(0, |(_, count)| *count)
            };
            Ok(Minute {
                at: jiff::Timestamp::from_second(minute * 60)
                    .map_err(|error| ApiError::Internal(error.to_string()))?,
                started: of(State::Running),
                succeeded: of(State::Succeeded),
                failed: of(State::Failed),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(Throughput { minutes }))
}
