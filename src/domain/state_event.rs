//! The JSON of one change of a submission's state: what the event stream and webhooks send.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::state::State;

/// One change of a submission's state: the `data` of each `state` event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StateEvent {
    /// The event's revision, also its SSE `id`: resume after it with `Last-Event-ID` or `after`.
    pub revision: i64,
    /// The submission's id.
    #[schema(example = "01935f2e-8c4a-7b3d-9e2f-123456789abc")]
    pub id: String,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The state it left; null when it was just stored (as `queued`, `waiting` or `failed`).
    pub previous_state: Option<State>,
    pub state: State,
    /// Why it is in this state, as the submission's `message` said at the change.
    pub message: Option<String>,
    /// When the change was recorded.
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
}
