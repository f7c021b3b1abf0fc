//! Where claimed submissions go, when the service has several clusters: each cluster's active
//! Jobs counted inside the claim's transaction (under the claims' lock, so that a cap holds
//! across replicas), and each claimed submission given its cluster ([`place`]).

use sqlx::{QueryBuilder, Row};

use super::error::Result;
use super::store::Store;
use crate::domain::DEFAULT_CLUSTER;
use crate::domain::placement::{Place, Placement, place};

/// The clusters a claim may place submissions in, in the service's order, and how it chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placing {
    pub placement: Placement,
    /// Each cluster's name, cap and whether it takes new Jobs; `in_use` is counted by the
    /// claim.
    pub places: Vec<Place>,
}

impl Default for Placing {
    /// The one cluster of a service given none: `default`, without a cap.
    fn default() -> Self {
        Placing::one(DEFAULT_CLUSTER)
    }
}

impl Placing {
    /// One cluster, open, without a cap.
    pub fn one(name: &str) -> Self {
        Placing {
            placement: Placement::Ordered,
            places: vec![Place {
                name: name.to_owned(),
                capacity: None,
                in_use: 0,
                open: true,
            }],
        }
    }

    /// Whether choosing needs each cluster's count of active Jobs.
    fn counts(&self) -> bool {
        self.places.iter().any(|place| place.capacity.is_some())
            || (self.placement == Placement::Balanced && self.places.len() > 1)
    }
}

/// The places of one claim: counted once, then updated as it places submissions.
pub(super) struct Places {
    placement: Placement,
    places: Vec<Place>,
}

impl Places {
    /// `placing`'s clusters with their active Jobs (pending, running, or claimed after
    /// `stale`) counted in `tx`, when choosing needs them.
    pub(super) async fn count(
        store: &Store,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        placing: &Placing,
        stale: i64,
    ) -> Result<Self> {
        let mut places = placing.places.clone();
        if placing.counts() {
            let mut builder =
                QueryBuilder::new("SELECT cluster, COUNT(*) AS in_use FROM submissions WHERE ");
            push_active(&mut builder, stale);
            builder.push(" AND cluster IN (");
            let mut separated = builder.separated(", ");
            for place in &places {
                separated.push_bind(place.name.clone());
            }
            builder.push(") GROUP BY cluster");
            for row in store.built(&mut builder)?.fetch_all(&mut **tx).await? {
                let name: Option<String> = row.try_get("cluster")?;
                let in_use: i64 = row.try_get("in_use")?;
                if let Some(place) = places
                    .iter_mut()
                    .find(|place| Some(&place.name) == name.as_ref())
                {
                    place.in_use = in_use;
                }
            }
        }
        Ok(Places {
            placement: placing.placement,
            places,
        })
    }

    /// The clusters that take one more Job now.
    pub(super) fn with_room(&self) -> Vec<String> {
        self.places
            .iter()
            .filter(|place| place.has_room())
            .map(|place| place.name.clone())
            .collect()
    }

    /// The cluster a submission pinned to `pin` (or not) goes to, counted there; `None` if
    /// none has room.
    pub(super) fn take(&mut self, pin: Option<&str>) -> Option<String> {
        let index = place(self.placement, &mut self.places, pin)?;
        Some(self.places[index].name.clone())
    }

    /// Gives back a place [`Places::take`] counted (the submission's limits had no room).
    pub(super) fn give_back(&mut self, name: &str) {
        if let Some(place) = self.places.iter_mut().find(|place| place.name == name) {
            place.in_use -= 1;
        }
    }
}

/// Leaves out of a claim's candidates the submissions pinned to a cluster without room.
pub(super) fn only_placeable(builder: &mut QueryBuilder<sqlx::Any>, with_room: &[String]) {
    builder.push(" AND (pin IS NULL OR pin IN (");
    let mut separated = builder.separated(", ");
    for name in with_room {
        separated.push_bind(name.clone());
    }
    builder.push("))");
}

/// The condition of a row whose Job counts as active (against a limit or a cluster's cap):
/// live, or claimed after `stale` and being created.
pub(super) fn push_active(builder: &mut QueryBuilder<sqlx::Any>, stale: i64) {
    builder
        .push(
            "(state IN ('pending', 'running') OR \
             (state = 'queued' AND claimed_at IS NOT NULL AND claimed_at > ",
        )
        .push_bind(stale)
        .push("))");
}
