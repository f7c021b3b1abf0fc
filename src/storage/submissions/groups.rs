//! Submissions grouped by the value of one label (a campaign), with how many of each group are
//! in each state: one GROUP BY over the label index, for the page's campaign bars.

use std::str::FromStr;

use sqlx::{Any, QueryBuilder, Row};

use crate::domain::State;
use crate::storage::error::{Result, StorageError};
use crate::storage::store::Store;

/// One value of the label, and how many submissions with it are in each state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub value: String,
    pub states: Vec<(State, i64)>,
}

impl Store {
    /// The groups of `owner`'s submissions (every user's with `None`) by the value of label
    /// `key`, by value; at most `limit` groups.
    pub async fn groups(&self, key: &str, owner: Option<&str>, limit: i64) -> Result<Vec<Group>> {
        // The first `limit` values, then the counts of their submissions by state.
        let mut builder = QueryBuilder::new(
            "SELECT l.value AS value, s.state AS state, COUNT(*) AS count \
             FROM submission_labels l JOIN submissions s ON s.id = l.submission_id WHERE l.key = ",
        );
        builder.push_bind(key.to_owned());
        push_owner(&mut builder, "s", owner);
        builder
            .push(
                " AND l.value IN (SELECT DISTINCT l2.value FROM submission_labels l2 \
                 JOIN submissions s2 ON s2.id = l2.submission_id WHERE l2.key = ",
            )
            .push_bind(key.to_owned());
        push_owner(&mut builder, "s2", owner);
        builder
            .push(" ORDER BY l2.value LIMIT ")
            .push_bind(limit)
            .push(") GROUP BY l.value, s.state ORDER BY l.value");
        let rows = self.built(&mut builder)?.fetch_all(&self.pool).await?;
        let mut groups: Vec<Group> = Vec::new();
        for row in &rows {
            let value: String = row.try_get("value")?;
            let state: String = row.try_get("state")?;
            let state = State::from_str(&state).map_err(|error| StorageError::Corrupt {
                id: format!("label {key}={value}"),
                reason: error.to_string(),
            })?;
            let count: i64 = row.try_get("count")?;
            match groups.last_mut() {
                Some(group) if group.value == value => group.states.push((state, count)),
                _ => groups.push(Group {
                    value,
                    states: vec![(state, count)],
                }),
            }
        }
        Ok(groups)
    }
}

/// `AND alias.owner = owner`, when there is one.
fn push_owner(builder: &mut QueryBuilder<Any>, alias: &str, owner: Option<&str>) {
    if let Some(owner) = owner {
        builder
            .push(format!(" AND {alias}.owner = "))
            .push_bind(owner.to_owned());
    }
}
