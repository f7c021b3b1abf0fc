//! Campaigns: the caller's submissions grouped by the value of a label (`campaign` unless
//! another is named), with how many are in each state, for the page's progress bars.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State as AppState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::context::Context;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::QueryPairs;
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
/// An admin sees every user's. Each change of state is also on `/v1/events`, for a page that
/// keeps the counts live.
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
    let owner = (!caller.admin).then_some(caller.user.as_str());
    let groups = context.store.groups(&label, owner, MAX_GROUPS).await?;
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
