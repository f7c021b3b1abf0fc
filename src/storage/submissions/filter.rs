//! Which submissions a list, a count or a bulk cancel is about: the [`Filter`] a request
//! sends, and the conditions of a WHERE clause it becomes (every value bound, never spliced).

use sqlx::{Any, QueryBuilder};

use crate::domain::{State, SubmissionId};

/// Which submissions a list or bulk cancel is about. Empty criteria match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this user's submissions.
    pub owner: Option<String>,
    /// Any of these submissions.
    pub ids: Vec<SubmissionId>,
    /// In any of these states.
    pub states: Vec<State>,
    pub name: Option<String>,
    /// Carrying every one of these labels.
    pub labels: Vec<(String, String)>,
    /// Placed in (or pinned to) this cluster.
    pub cluster: Option<String>,
    /// Waiting, or having waited, in this Kueue LocalQueue: a DNS-1123 subdomain, as every
    /// stored queue is (the caller checks it).
    pub queue: Option<String>,
}

/// Joins the conditions of a WHERE clause: `WHERE` before the first, `AND` before the others.
///
/// (`QueryBuilder::separated` cannot be used here: each condition is several pushes, some bound.)
pub(super) struct Conditions {
    pub(super) any: bool,
}

impl Conditions {
    pub(super) fn new() -> Self {
        Conditions { any: false }
    }

    /// Starts the next condition.
    pub(super) fn next(&mut self, builder: &mut QueryBuilder<Any>) {
        builder.push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
    }

    /// The conditions of `filter` on the submissions aliased `s`.
    pub(super) fn filter(&mut self, builder: &mut QueryBuilder<Any>, filter: &Filter) {
        if !filter.ids.is_empty() {
            self.next(builder);
            builder.push("s.id IN (");
            let mut ids = builder.separated(", ");
            for id in &filter.ids {
                ids.push_bind(id.to_string());
            }
            builder.push(")");
        }
        if let Some(owner) = &filter.owner {
            self.next(builder);
            builder.push("s.owner = ").push_bind(owner.clone());
        }
        if !filter.states.is_empty() {
            self.next(builder);
            push_states(builder, "s.state", &filter.states);
        }
        if let Some(name) = &filter.name {
            self.next(builder);
            builder.push("s.name = ").push_bind(name.clone());
        }
        if let Some(cluster) = &filter.cluster {
            self.next(builder);
            builder
                .push("(s.cluster = ")
                .push_bind(cluster.clone())
                .push(" OR s.pin = ")
                .push_bind(cluster.clone())
                .push(")");
        }
        if let Some(queue) = &filter.queue {
            // Read from the stored spec, whose JSON names the queue first in `queueing`; a
            // DNS name holds no quote and nothing LIKE reads as a wildcard.
            self.next(builder);
            builder
                .push("s.spec LIKE ")
                .push_bind(format!("%\"queueing\":{{\"queue\":\"{queue}\"%"));
        }
        for (key, value) in &filter.labels {
            self.next(builder);
            builder
                .push(
                    "EXISTS (SELECT 1 FROM submission_labels l WHERE l.submission_id = s.id \
                     AND l.key = ",
                )
                .push_bind(key.clone())
                .push(" AND l.value = ")
                .push_bind(value.clone())
                .push(")");
        }
    }
}

/// `column IN (states...)`, the states bound; `states` must not be empty. One state is
/// written `column = state`, the plainest form of the same condition.
pub(super) fn push_states(builder: &mut QueryBuilder<Any>, column: &str, states: &[State]) {
    if let [state] = states {
        builder.push(column).push(" = ").push_bind(state.as_str());
        return;
    }
    builder.push(column).push(" IN (");
    let mut separated = builder.separated(", ");
    for state in states {
        separated.push_bind(state.as_str());
    }
    builder.push(")");
}
