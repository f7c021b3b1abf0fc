//! Campaigns: submissions that wait for others. A merge step names the samples it needs in
//! `depends_on` (their ids, or inside one batch their names) and waits in `waiting` until every
//! one succeeded; if one fails or is cancelled, it cannot run and ends too, saying which.
//!
//! Everything here is pure: resolving what `depends_on` names, refusing cycles, and the state
//! each new submission starts in. Storage applies it, and moves dependents on when a
//! submission ends (one counter per dependent, so a fan-in of any width costs one update per
//! edge, never a rescan).

use std::collections::{BTreeSet, HashMap};

use super::field_error::FieldError;
use super::state::State;
use super::submission_id::SubmissionId;

/// The most submissions one submission may depend on.
pub const MAX_DEPENDENCIES: usize = 10_000;

/// One entry of `depends_on`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// Another submission of the same request, by its position.
    Sent(usize),
    /// A submission stored before.
    Stored(SubmissionId),
}

/// Resolves every submission's `depends_on` (`(its name, its entries)`, in request order): an
/// entry is the name of another submission of the request, or a stored submission's id.
/// Errors name the submission by position and the entry (`depends_on[j]`).
pub fn resolve(
    requests: &[(Option<&str>, &[String])],
) -> Result<Vec<Vec<Dependency>>, Vec<(usize, FieldError)>> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, (name, _)) in requests.iter().enumerate() {
        if let Some(name) = name {
            by_name.entry(name).or_default().push(index);
        }
    }
    let mut errors = Vec::new();
    let mut resolved = Vec::with_capacity(requests.len());
    for (index, (_, entries)) in requests.iter().enumerate() {
        let mut dependencies = BTreeSet::new();
        if entries.len() > MAX_DEPENDENCIES {
            errors.push((
                index,
                FieldError::new(
                    "depends_on",
                    format!("must name at most {MAX_DEPENDENCIES} submissions"),
                ),
            ));
        }
        for (position, entry) in entries.iter().enumerate() {
            let field = format!("depends_on[{position}]");
            let dependency = match by_name.get(entry.as_str()).map(Vec::as_slice) {
                Some([one]) if *one == index => Err("a submission cannot depend on itself".into()),
                Some([one]) => Ok(Dependency::Sent(*one)),
                Some(several) => Err(format!(
                    "names {} submissions of this request; names used in depends_on must be unique",
                    several.len()
                )),
                None => entry
                    .parse::<SubmissionId>()
                    .map(Dependency::Stored)
                    .map_err(|_| {
                        "is neither a submission's id nor the name of another submission of this \
                         request"
                            .to_owned()
                    }),
            };
            match dependency {
                Ok(dependency) => {
                    dependencies.insert(dependency);
                }
                Err(reason) => errors.push((index, FieldError::new(field, reason))),
            }
        }
        resolved.push(dependencies.into_iter().collect());
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

/// The submissions of a request that depend on one another in a circle, in the order of the
/// circle (each depends on the next, the last on the first), if there is such a circle.
pub fn cycle(dependencies: &[Vec<Dependency>]) -> Option<Vec<usize>> {
    let edges: Vec<Vec<usize>> = dependencies
        .iter()
        .map(|own| {
            own.iter()
                .filter_map(|dependency| match dependency {
                    Dependency::Sent(other) => Some(*other),
                    Dependency::Stored(_) => None,
                })
                .collect()
        })
        .collect();
    // Depth-first, iteratively: 0 unvisited, 1 on the current path, 2 done.
    let mut mark = vec![0_u8; edges.len()];
    for start in 0..edges.len() {
        if mark[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            match edges[node].get(*next) {
                Some(&other) => {
                    *next += 1;
                    match mark.get(other) {
                        Some(0) => {
                            mark[other] = 1;
                            path.push((other, 0));
                        }
                        Some(1) => {
                            let from = path.iter().position(|(on, _)| *on == other)?;
                            return Some(path[from..].iter().map(|(on, _)| *on).collect());
                        }
                        _ => {}
                    }
                }
                None => {
                    mark[node] = 2;
                    path.pop();
                }
            }
        }
    }
    None
}

/// How a new submission starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub state: State,
    /// Dependencies that have not succeeded yet.
    pub waiting_on: i64,
    /// Why it cannot run, when a dependency already failed or was cancelled.
    pub message: Option<String>,
}

/// What a dependency's end means for the submissions waiting on it.
pub fn dependency_ended(id: SubmissionId, state: State) -> String {
    match state {
        State::Cancelled => format!("dependency {id} was cancelled"),
        _ => format!("dependency {id} failed"),
    }
}

/// The state each submission of a request starts in: `waiting` while a dependency has not
/// succeeded, `failed` if one already failed or was cancelled (naming it), else `queued`.
/// `ids` are the new submissions' ids, `stored` the states of the stored dependencies.
/// The request must have no [`cycle`]; a dependency missing from `stored` counts as unfinished.
pub fn starts(
    ids: &[SubmissionId],
    dependencies: &[Vec<Dependency>],
    stored: &HashMap<SubmissionId, State>,
) -> Vec<Start> {
    let count = dependencies.len();
    // Each submission after the ones it depends on (Kahn's order; a cycle leaves its members out).
    let mut remaining: Vec<usize> = dependencies
        .iter()
        .map(|own| {
            own.iter()
                .filter(|dependency| matches!(dependency, Dependency::Sent(_)))
                .count()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, own) in dependencies.iter().enumerate() {
        for dependency in own {
            if let Dependency::Sent(other) = dependency
                && let Some(list) = dependents.get_mut(*other)
            {
                list.push(index);
            }
        }
    }
    let mut order: Vec<usize> = (0..count).filter(|index| remaining[*index] == 0).collect();
    let mut next = 0;
    while let Some(&index) = order.get(next) {
        next += 1;
        for &dependent in &dependents[index] {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                order.push(dependent);
            }
        }
    }

    let mut starts: Vec<Option<Start>> = vec![None; count];
    for index in order {
        let mut waiting_on = 0;
        let mut message = None;
        for dependency in &dependencies[index] {
            let (id, state) = match dependency {
                Dependency::Sent(other) => (
                    ids.get(*other).copied(),
                    starts[*other].as_ref().map(|start| start.state),
                ),
                Dependency::Stored(id) => (Some(*id), stored.get(id).copied()),
            };
            match state {
                Some(State::Succeeded) => {}
                Some(ended @ (State::Failed | State::Cancelled)) if message.is_none() => {
                    message = id.map(|id| dependency_ended(id, ended));
                    waiting_on += 1;
                }
                _ => waiting_on += 1,
            }
        }
        let state = if message.is_some() {
            State::Failed
        } else if waiting_on > 0 {
            State::Waiting
        } else {
            State::Queued
        };
        starts[index] = Some(Start {
            state,
            waiting_on,
            message,
        });
    }
    starts
        .into_iter()
        .map(|start| {
            start.unwrap_or(Start {
                state: State::Waiting,
                waiting_on: 1,
                message: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn names_in_the_request_and_stored_ids_are_both_dependencies() {
        let stored = SubmissionId::new();
        let merge_inputs = entries(&["a", "b", &stored.to_string(), "a"]);
        let requests = [
            (Some("a"), &[][..]),
            (Some("b"), &[][..]),
            (Some("merge"), merge_inputs.as_slice()),
        ];

        let resolved = resolve(&requests).expect("valid");

        assert_eq!(
            resolved[2],
            [
                Dependency::Sent(0),
                Dependency::Sent(1),
                Dependency::Stored(stored)
            ]
        );
        assert!(resolved[0].is_empty());
    }

    #[test]
    fn unknown_ambiguous_and_own_names_are_refused_each_by_its_place() {
        let bad = entries(&["nothing-by-this-name", "twice", "me"]);
        let requests = [
            (Some("twice"), &[][..]),
            (Some("twice"), &[][..]),
            (Some("me"), bad.as_slice()),
        ];

        let errors = resolve(&requests).expect_err("invalid");

        let fields: Vec<(usize, &str)> = errors
            .iter()
            .map(|(index, error)| (*index, error.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (2, "depends_on[0]"),
                (2, "depends_on[1]"),
                (2, "depends_on[2]")
            ]
        );
        assert!(errors[2].1.reason.contains("itself"), "{errors:?}");
    }

    #[test]
    fn a_circle_is_found_and_named_in_its_order() {
        use Dependency::Sent;
        let dependencies = vec![
            vec![],
            vec![Sent(2)],
            vec![Sent(3)],
            vec![Sent(1)],
            vec![Sent(0)],
        ];

        let found = cycle(&dependencies).expect("a cycle");

        assert_eq!(found, [1, 2, 3]);
        assert_eq!(
            cycle(&[vec![], vec![Sent(0)], vec![Sent(0), Sent(1)]]),
            None
        );
    }

    #[test]
    fn a_wide_fan_in_is_checked_in_one_pass() {
        use Dependency::Sent;
        let mut dependencies: Vec<Vec<Dependency>> = vec![Vec::new(); 10_000];
        dependencies.push((0..10_000).map(Sent).collect());

        assert_eq!(cycle(&dependencies), None);
        let ids: Vec<SubmissionId> = (0..dependencies.len())
            .map(|_| SubmissionId::new())
            .collect();
        let starts = starts(&ids, &dependencies, &HashMap::new());
        assert_eq!(starts[10_000].waiting_on, 10_000);
        assert_eq!(starts[0].state, State::Queued);
    }

    #[test]
    fn a_submission_waits_for_what_has_not_succeeded_and_fails_after_what_did_not() {
        let succeeded = SubmissionId::new();
        let running = SubmissionId::new();
        let failed = SubmissionId::new();
        let stored = HashMap::from([
            (succeeded, State::Succeeded),
            (running, State::Running),
            (failed, State::Failed),
        ]);
        let ids: Vec<SubmissionId> = (0..4).map(|_| SubmissionId::new()).collect();
        let dependencies = vec![
            vec![Dependency::Stored(succeeded)],
            vec![Dependency::Stored(succeeded), Dependency::Stored(running)],
            vec![Dependency::Stored(failed)],
            // After the one that cannot run, in the same request.
            vec![Dependency::Sent(2)],
        ];

        let starts = starts(&ids, &dependencies, &stored);

        let states: Vec<State> = starts.iter().map(|start| start.state).collect();
        assert_eq!(
            states,
            [State::Queued, State::Waiting, State::Failed, State::Failed]
        );
        assert_eq!(starts[1].waiting_on, 1);
        assert_eq!(
            starts[2].message,
            Some(format!("dependency {failed} failed"))
        );
        assert_eq!(
            starts[3].message,
            Some(format!("dependency {} failed", ids[2]))
        );
    }
}
