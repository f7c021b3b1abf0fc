//! Which of a rerun's candidates run again, and what each then waits for: a pure function of
//! their dependencies and the states of the dependencies that are not candidates. The store
//! reads those in the rerun's transaction and writes what this decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::state::State;
use crate::domain::submission_id::SubmissionId;

/// What a rerun does with its candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerunPlan {
    /// Those that run again, each with how many of its dependencies it waits for (those that
    /// run again with it or still run): with none it is queued, else it waits.
    pub runs: BTreeMap<SubmissionId, i64>,
    /// Those held back: each with the dependency that holds it and that one's state (`None`
    /// when it is gone).
    pub held: Vec<Held>,
}

/// A candidate held back by a dependency that ended otherwise than succeeded and does not
/// run again (another candidate held back, or not a candidate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: SubmissionId,
    pub by: SubmissionId,
    pub state: Option<State>,
}

/// Runs again each of `candidates` (with their states now) whose every dependency
/// (`dependencies`) succeeded, runs again too, or still runs; `others` holds the states of the
/// dependencies that are not candidates. One held back holds back what depends on it in turn.
pub fn plan_rerun(
    candidates: &BTreeMap<SubmissionId, State>,
    dependencies: &HashMap<SubmissionId, Vec<SubmissionId>>,
    others: &HashMap<SubmissionId, State>,
) -> RerunPlan {
    let mut runs: BTreeSet<SubmissionId> = candidates.keys().copied().collect();
    let mut held = Vec::new();
    loop {
        let blocked: Vec<Held> = runs
            .iter()
            .filter_map(|id| {
                let by = dependencies.get(id)?.iter().find(|dependency| {
                    !runs.contains(dependency)
                        && others
                            .get(dependency)
                            .is_none_or(|state| state.is_final() && *state != State::Succeeded)
                })?;
                Some(Held {
                    id: *id,
                    by: *by,
                    state: others.get(by).or_else(|| candidates.get(by)).copied(),
                })
            })
            .collect();
        if blocked.is_empty() {
            break;
        }
        for blocked in blocked {
            runs.remove(&blocked.id);
            held.push(blocked);
        }
    }
    let runs = runs
        .into_iter()
        .map(|id| {
            let waits = dependencies.get(&id).map_or(0, |dependencies| {
                dependencies
                    .iter()
                    .filter(|dependency| {
                        others.get(dependency).is_none_or(|state| !state.is_final())
                    })
                    .count()
            });
            (id, i64::try_from(waits).unwrap_or(i64::MAX))
        })
        .collect();
    RerunPlan { runs, held }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<const N: usize>() -> [SubmissionId; N] {
        std::array::from_fn(|_| SubmissionId::new())
    }

    #[test]
    fn a_merge_runs_again_waiting_on_its_failed_samples_rerun_and_its_running_one() {
        // Samples a and b failed and run again, c still runs, d succeeded; the merge m needs all.
        let [a, b, c, d, m] = ids();
        let candidates =
            BTreeMap::from([(a, State::Failed), (b, State::Failed), (m, State::Failed)]);
        let dependencies = HashMap::from([(m, vec![a, b, c, d])]);
        let others = HashMap::from([(c, State::Running), (d, State::Succeeded)]);

        let plan = plan_rerun(&candidates, &dependencies, &others);

        assert_eq!(plan.runs, BTreeMap::from([(a, 0), (b, 0), (m, 3)]));
        assert!(plan.held.is_empty());
    }

    #[test]
    fn a_dependency_that_failed_and_is_not_rerun_holds_back_its_dependents_and_theirs() {
        // x failed and is not a candidate; m needs x, and the final f needs m.
        let [x, m, f, free] = ids();
        let candidates = BTreeMap::from([
            (m, State::Failed),
            (f, State::Cancelled),
            (free, State::Failed),
        ]);
        let dependencies = HashMap::from([(m, vec![x]), (f, vec![m])]);
        let others = HashMap::from([(x, State::Failed)]);

        let plan = plan_rerun(&candidates, &dependencies, &others);

        assert_eq!(plan.runs, BTreeMap::from([(free, 0)]));
        assert_eq!(
            plan.held,
            [
                Held {
                    id: m,
                    by: x,
                    state: Some(State::Failed)
                },
                Held {
                    id: f,
                    by: m,
                    state: Some(State::Failed)
                },
            ]
        );
    }

    #[test]
    fn a_dependency_that_is_gone_holds_back_and_one_cancelled_too() {
        let [gone, cancelled, a, b] = ids();
        let candidates = BTreeMap::from([(a, State::Failed), (b, State::Failed)]);
        let dependencies = HashMap::from([(a, vec![gone]), (b, vec![cancelled])]);
        let others = HashMap::from([(cancelled, State::Cancelled)]);

        let plan = plan_rerun(&candidates, &dependencies, &others);

        assert!(plan.runs.is_empty());
        let held: Vec<(SubmissionId, Option<State>)> =
            plan.held.iter().map(|held| (held.id, held.state)).collect();
        assert!(held.contains(&(a, None)) && held.contains(&(b, Some(State::Cancelled))));
    }
}
