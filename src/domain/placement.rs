//! Which cluster a submission's Job goes to, when the service has several: a pure choice among
//! the clusters' places, made by the dispatcher under the claims' lock (so that every replica
//! counts the same Jobs per cluster).

use std::fmt;
use std::str::FromStr;

/// How an unpinned submission's cluster is chosen (`--placement`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Placement {
    /// The first cluster, in the order the service was given them, that has room: a lab's own
    /// cluster first, the overflow after.
    #[default]
    Ordered,
    /// The cluster with the lowest share of its capacity in use (a cluster without a cap
    /// counts its active Jobs against a capacity of one more than the most in use anywhere).
    Balanced,
}

impl FromStr for Placement {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ordered" => Ok(Placement::Ordered),
            "balanced" => Ok(Placement::Balanced),
            other => Err(format!(
                "unknown placement {other:?}: expected `ordered` or `balanced`"
            )),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Ordered => "ordered",
            Placement::Balanced => "balanced",
        })
    }
}

/// One cluster as placement sees it: its name, its cap of active Jobs, how many it has
/// (pending, running, or claimed), and whether it takes new Jobs at all (it answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub name: String,
    pub capacity: Option<i64>,
    pub in_use: i64,
    pub open: bool,
}

impl Place {
    /// Whether one more Job fits.
    pub fn has_room(&self) -> bool {
        self.open && self.capacity.is_none_or(|capacity| self.in_use < capacity)
    }
}

/// The place (its index in `places`) a submission pinned to `pin` (or not pinned) goes to now,
/// counting it there; `None` if none has room: it stays queued.
pub fn place(placement: Placement, places: &mut [Place], pin: Option<&str>) -> Option<usize> {
    let chosen = match pin {
        Some(pin) => places
            .iter()
            .position(|place| place.name == pin)
            .filter(|&index| places[index].has_room()),
        None => match placement {
            Placement::Ordered => places.iter().position(Place::has_room),
            Placement::Balanced => {
                let busiest = places.iter().map(|place| place.in_use).max().unwrap_or(0);
                places
                    .iter()
                    .enumerate()
                    .filter(|(_, place)| place.has_room())
                    .min_by(|(_, a), (_, b)| {
                        // a.in_use / a.capacity against b's, without division.
                        let capacity = |place: &Place| place.capacity.unwrap_or(busiest + 1);
                        (i128::from(a.in_use) * i128::from(capacity(b)))
                            .cmp(&(i128::from(b.in_use) * i128::from(capacity(a))))
                    })
                    .map(|(index, _)| index)
            }
        },
    }?;
    places[chosen].in_use += 1;
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(given: &[(&str, Option<i64>, i64, bool)]) -> Vec<Place> {
        given
            .iter()
            .map(|(name, capacity, in_use, open)| Place {
                name: (*name).into(),
                capacity: *capacity,
                in_use: *in_use,
                open: *open,
            })
            .collect()
    }

    fn names(placement: Placement, places: &mut [Place], count: usize) -> Vec<String> {
        (0..count)
            .map(|_| match place(placement, places, None) {
                Some(index) => places[index].name.clone(),
                None => "-".into(),
            })
            .collect()
    }

    #[test]
    fn ordered_fills_the_first_cluster_to_its_cap_then_overflows_in_order() {
        let mut clusters = places(&[
            ("onsite", Some(2), 1, true),
            ("cloud", Some(2), 0, true),
            ("neighbour", None, 0, true),
        ]);

        let placed = names(Placement::Ordered, &mut clusters, 5);

        assert_eq!(
            placed,
            ["onsite", "cloud", "cloud", "neighbour", "neighbour"]
        );
    }

    #[test]
    fn an_unreachable_cluster_gets_nothing_and_full_clusters_leave_work_queued() {
        let mut clusters = places(&[("onsite", None, 0, false), ("cloud", Some(1), 0, true)]);

        let placed = names(Placement::Ordered, &mut clusters, 2);

        assert_eq!(placed, ["cloud", "-"]);
    }

    #[test]
    fn balanced_goes_to_the_lowest_share_of_capacity_in_use() {
        let mut clusters = places(&[("small", Some(2), 1, true), ("large", Some(10), 4, true)]);

        // 1/2 against 4/10: large, until large reaches 5/10, then either; small at 2/2 is full.
        let placed = names(Placement::Balanced, &mut clusters, 8);

        assert_eq!(
            placed,
            [
                "large", "small", "large", "large", "large", "large", "large", "-"
            ]
        );
    }

    #[test]
    fn balanced_without_caps_evens_out_the_active_jobs() {
        let mut clusters = places(&[("a", None, 3, true), ("b", None, 0, true)]);

        let placed = names(Placement::Balanced, &mut clusters, 4);

        assert_eq!(placed, ["b", "b", "b", "a"]);
    }

    #[test]
    fn a_pinned_submission_goes_to_its_cluster_or_waits_for_it() {
        let mut clusters = places(&[("onsite", Some(1), 0, true), ("gpu", Some(1), 0, false)]);

        assert_eq!(place(Placement::Ordered, &mut clusters, Some("gpu")), None);
        assert_eq!(
            place(Placement::Ordered, &mut clusters, Some("onsite")),
            Some(0)
        );
        assert_eq!(
            place(Placement::Ordered, &mut clusters, Some("onsite")),
            None
        );
        assert_eq!(place(Placement::Ordered, &mut clusters, Some("gone")), None);
    }

    #[test]
    fn placements_read_as_their_flag_values() {
        assert_eq!("balanced".parse(), Ok(Placement::Balanced));
        assert_eq!(Placement::Ordered.to_string(), "ordered");
        assert!("random".parse::<Placement>().is_err());
    }
}
