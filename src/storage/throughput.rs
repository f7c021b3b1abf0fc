//! Throughput: how many of a user's submissions started, succeeded and failed in each minute
//! of a recent window, counted from their recorded changes of state (`submission_events`).

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;
use sqlx::{QueryBuilder, Row};

use super::error::{Result, StorageError};
use super::events::push_event_label;
use super::store::Store;
use crate::domain::State;

/// Per minute (its start, in minutes since the epoch), the changes to each counted state.
pub type PerMinute = BTreeMap<i64, Vec<(State, i64)>>;

impl Store {
    /// The changes to `running` (a start), `succeeded` and `failed` of `owner`'s submissions (every user's with `None`)
    /// since `since`, by minute; with `label`, only of submissions that carry it.
    pub async fn throughput(
        &self,
        owner: Option<&str>,
        label: Option<&(String, String)>,
        since: Timestamp,
    ) -> Result<PerMinute> {
        let mut builder = QueryBuilder::new(
            "SELECT e.at_ms / 60000 AS minute, e.state AS state, COUNT(*) AS count \
             FROM submission_events e WHERE e.at_ms >= ",
        );
        builder.push_bind(since.as_millisecond());
        builder.push(" AND e.state IN ('running', 'succeeded', 'failed')");
        if let Some(owner) = owner {
            builder.push(" AND e.owner = ").push_bind(owner.to_owned());
        }
        if let Some((key, value)) = label {
            push_event_label(&mut builder, key, value);
        }
        builder.push(" GROUP BY e.at_ms / 60000, e.state");
        let mut minutes = PerMinute::new();
        for row in self.built(&mut builder)?.fetch_all(&self.pool).await? {
            let minute: i64 = row.try_get("minute")?;
            let state: String = row.try_get("state")?;
            let state = State::from_str(&state).map_err(|error| StorageError::Corrupt {
                id: "throughput".into(),
                reason: error.to_string(),
            })?;
            minutes
                .entry(minute)
                .or_default()
                .push((state, row.try_get("count")?));
        }
        Ok(minutes)
    }
}
