//! What the dispatcher asks of the `submissions` table: the queued submissions it may create
//! Jobs for now, taken (claimed) in submit order within every user's and batch group's limit
//! of active Jobs, and the refusals it records.
//!
//! A claim marks a queued row as being dispatched; from then on it counts against its limits
//! like a Job that exists. Claims are taken under one lock row per namespace
//! (`dispatch_turns`), so dispatchers of several replicas never count the same free slot, and
//! the database, not a replica's memory, decides. A claim whose dispatcher died lapses after
//! [`CLAIM_LEASE`]; creating the same Job twice is harmless (409).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use sqlx::{Any, QueryBuilder, Row};

use super::error::Result;
use super::limits::{Full, take_place};
use super::placing::{Places, Placing, only_placeable};
use super::store::Store;
use super::submissions::row::{columns, from_row};
use crate::domain::{Submission, SubmissionId};

/// How long a claim holds without its Job being recorded.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Rounds of reading candidates in one claim, each leaving out the users and groups found at
/// their limit, so that one user's thousand queued submissions do not hide the next user's.
const CLAIM_ROUNDS: usize = 8;

/// A submission waiting for its Job, with the refused creates it has had so far.
#[derive(Debug, Clone)]
pub struct Queued {
    pub submission: Submission,
    pub attempts: i64,
    /// [`Store::withdrawals`] before the claim read the row: if it is the same at the create,
    /// nothing in this process has cancelled the submission since.
    pub withdrawals: u64,
}

/// How the Jobs of claimed submissions are created, and so where the limits of concurrent
/// Jobs hold a submission back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claiming {
    /// Runnable: a submission is claimed only within its limits.
    Runnable,
    /// Suspended in Kueue, with at most `max_suspended` of them waiting there (counted under
    /// the claims' lock, so replicas never pass it together). The limits are at Kueue's
    /// admission gate: every due submission is claimed, those under a limit marked `gated`
    /// (their Jobs are created with the gate on), and [`Store::open_gates`] lifts the gates
    /// within the limits; a Job waiting in Kueue's queue counts against no limit.
    ThroughKueue { max_suspended: u32 },
}

pub(super) type Tx<'t> = sqlx::Transaction<'t, Any>;

impl Store {
    /// Claims up to `limit` queued submissions of `namespace` whose Jobs may be created now:
    /// oldest first; not waiting out a refusal's backoff; within their user's limit of active
    /// Jobs (the token's, or `user_default`; `None` for none) and their batch group's.
    pub async fn claim(
        &self,
        namespace: &str,
        now: Timestamp,
        limit: u32,
        user_default: Option<i64>,
    ) -> Result<Vec<Queued>> {
        self.claim_for(
            namespace,
            now,
            limit,
            user_default,
            Claiming::Runnable,
            &Placing::default(),
        )
        .await
    }

    /// [`Store::claim`], for Jobs created as `claiming` says, in the clusters `placing` has
    /// room in; the claimed submissions come back with their `cluster`, and with `gated` set
    /// where their Job is to be created with Kueue's gate.
    pub async fn claim_for(
        &self,
        namespace: &str,
        now: Timestamp,
        limit: u32,
        user_default: Option<i64>,
        claiming: Claiming,
        placing: &Placing,
    ) -> Result<Vec<Queued>> {
        let stale = now.as_millisecond() - lease_millis();
        let withdrawals = self.withdrawals();
        let _turn = self.turn_to_write().await;
        let mut tx = self.begin_write().await?;
        take_turn(&mut tx, namespace, now).await?;
        let mut places = Places::count(self, &mut tx, placing, stale).await?;
        let limit = match claiming {
            Claiming::Runnable => limit,
            Claiming::ThroughKueue { max_suspended } => {
                let waiting = suspended_in(&mut *tx, namespace, stale).await?;
                let room = (i64::from(max_suspended) - waiting).max(0);
                limit.min(u32::try_from(room).unwrap_or(u32::MAX))
            }
        };

        let mut claimed: Vec<Queued> = Vec::new();
        let mut full_users: HashSet<String> = HashSet::new();
        let mut full_groups: HashSet<String> = HashSet::new();
        let mut users: HashMap<String, i64> = HashMap::new();
        let mut groups: HashMap<String, i64> = HashMap::new();
        for _ in 0..CLAIM_ROUNDS {
            let wanted = i64::from(limit) - i64::try_from(claimed.len()).unwrap_or(i64::MAX);
            let with_room = places.with_room();
            if wanted <= 0 || with_room.is_empty() {
                break;
            }
            let taken: Vec<SubmissionId> = claimed.iter().map(|q| q.submission.id).collect();
            let candidates = self
                .candidates(
                    &mut tx,
                    Wanted {
                        namespace,
                        now,
                        stale,
                        limit: wanted,
                        with_room: &with_room,
                        taken: &taken,
                    },
                    &full_users,
                    &full_groups,
                )
                .await?;
            let read_all = i64::try_from(candidates.len()).unwrap_or(i64::MAX) < wanted;
            let rooms = with_room.len();
            if claiming != Claiming::Runnable {
                for mut candidate in candidates {
                    let submission = &mut candidate.submission;
                    let Some(cluster) = places.take(submission.spec.cluster.as_deref()) else {
                        continue;
                    };
                    submission.cluster = Some(cluster);
                    submission.gated = submission.limits.user.or(user_default).is_some()
                        || submission.limits.group.is_some();
                    claimed.push(candidate);
                }
                if read_all || rooms == places.with_room().len() {
                    break;
                }
                continue;
            }
            let newly_full = (full_users.len(), full_groups.len());
            self.count_active(
                &mut tx,
                &candidates,
                user_default,
                stale,
                &mut users,
                &mut groups,
            )
            .await?;
            for mut candidate in candidates {
                let Some(cluster) = places.take(candidate.submission.spec.cluster.as_deref())
                else {
                    continue;
                };
                match take_place(&candidate.submission, user_default, &mut users, &mut groups) {
                    Ok(()) => {
                        candidate.submission.cluster = Some(cluster);
                        claimed.push(candidate);
                    }
                    Err(full) => {
                        places.give_back(&cluster);
                        match full {
                            Full::User(user) => full_users.insert(user),
                            Full::Group(group) => full_groups.insert(group),
                        };
                    }
                }
            }
            if read_all
                || (newly_full == (full_users.len(), full_groups.len())
                    && rooms == places.with_room().len())
            {
                break;
            }
        }

        let mut marks: HashMap<(bool, &str), Vec<SubmissionId>> = HashMap::new();
        for queued in &claimed {
            let submission = &queued.submission;
            let cluster = submission.cluster.as_deref().unwrap_or_default();
            marks
                .entry((submission.gated, cluster))
                .or_default()
                .push(submission.id);
        }
        for ((gated, cluster), ids) in marks {
            for chunk in ids.chunks(500) {
                let mut builder = QueryBuilder::new("UPDATE submissions SET claimed_at = ");
                builder
                    .push_bind(now.as_millisecond())
                    .push(", gated = ")
                    .push_bind(i64::from(gated))
                    .push(", cluster = ")
                    .push_bind(cluster.to_owned())
                    .push(" WHERE id IN (");
                let mut separated = builder.separated(", ");
                for id in chunk {
                    separated.push_bind(id.to_string());
                }
                builder.push(")");
                self.built(&mut builder)?.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        for queued in &mut claimed {
            queued.withdrawals = withdrawals;
        }
        Ok(claimed)
    }

    /// The oldest claimable queued submissions, leaving out the users and groups at their limit
    /// and those pinned to a cluster without room.
    async fn candidates(
        &self,
        tx: &mut Tx<'_>,
        wanted: Wanted<'_>,
        full_users: &HashSet<String>,
        full_groups: &HashSet<String>,
    ) -> Result<Vec<Queued>> {
        let Wanted {
            namespace,
            now,
            stale,
            limit,
            with_room,
            taken,
        } = wanted;
        let mut builder = QueryBuilder::new(concat!(
            "SELECT ",
            columns!(),
            ", dispatch_attempts FROM submissions WHERE state = 'queued' AND namespace = "
        ));
        builder
            .push_bind(namespace.to_owned())
            .push(" AND (next_dispatch_at IS NULL OR next_dispatch_at <= ")
            .push_bind(now.as_millisecond())
            .push(") AND (claimed_at IS NULL OR claimed_at <= ")
            .push_bind(stale)
            .push(")");
        only_placeable(&mut builder, with_room);
        if !taken.is_empty() {
            // Claimed by an earlier round of this claim, not marked yet.
            builder.push(" AND id NOT IN (");
            let mut separated = builder.separated(", ");
            for id in taken {
                separated.push_bind(id.to_string());
            }
            builder.push(")");
        }
        if !full_users.is_empty() {
            builder.push(" AND owner NOT IN (");
            let mut separated = builder.separated(", ");
            for user in full_users {
                separated.push_bind(user.clone());
            }
            builder.push(")");
        }
        if !full_groups.is_empty() {
            builder.push(" AND (group_id IS NULL OR group_id NOT IN (");
            let mut separated = builder.separated(", ");
            for group in full_groups {
                separated.push_bind(group.clone());
            }
            builder.push("))");
        }
        builder.push(" ORDER BY id LIMIT ").push_bind(limit);
        let rows = self.built(&mut builder)?.fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|row| {
                Ok(Queued {
                    submission: from_row(row)?.0,
                    attempts: row.try_get("dispatch_attempts")?,
                    // Set by the claim, once it holds these rows.
                    withdrawals: 0,
                })
            })
            .collect()
    }

    /// Counts the active Jobs (pending, running, or claimed) of the limited users and groups
    /// among `candidates` that `users` and `groups` do not count yet.
    async fn count_active(
        &self,
        tx: &mut Tx<'_>,
        candidates: &[Queued],
        user_default: Option<i64>,
        stale: i64,
        users: &mut HashMap<String, i64>,
        groups: &mut HashMap<String, i64>,
    ) -> Result<()> {
        // The claims, then the live Jobs: each read from its own index. In this order a claim
        // whose Job another replica creates between the two reads is counted twice (a turn too
        // cautious), never missed (a limit passed), as the other order allowed on Postgres,
        // where each statement reads what was committed before it began. The literal states
        // let both databases match the partial index of claims.
        const ACTIVE: [&str; 2] = [
            "state = 'queued' AND claimed_at IS NOT NULL AND claimed_at > ",
            "state IN ('pending', 'running')",
        ];
        self.count_in(tx, candidates, user_default, &ACTIVE, stale, users, groups)
            .await
    }

    /// Counts the rows that `active` (statements' conditions; one ending in `> ` is given
    /// `stale`) selects, of the limited users and groups among `candidates` that `users` and
    /// `groups` do not count yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn count_in(
        &self,
        tx: &mut Tx<'_>,
        candidates: &[Queued],
        user_default: Option<i64>,
        active: &[&str],
        stale: i64,
        users: &mut HashMap<String, i64>,
        groups: &mut HashMap<String, i64>,
    ) -> Result<()> {
        let new_users: HashSet<&str> = candidates
            .iter()
            .map(|queued| &queued.submission)
            .filter(|submission| submission.limits.user.or(user_default).is_some())
            .map(|submission| submission.owner.as_str())
            .filter(|owner| !users.contains_key(*owner))
            .collect();
        let new_groups: HashSet<&str> = candidates
            .iter()
            .filter_map(|queued| queued.submission.limits.group.as_ref())
            .map(|(group, _)| group.as_str())
            .filter(|group| !groups.contains_key(*group))
            .collect();
        for (column, keys, counts) in [
            ("owner", new_users, &mut *users),
            ("group_id", new_groups, &mut *groups),
        ] {
            if keys.is_empty() {
                continue;
            }
            for key in &keys {
                counts.insert((*key).to_owned(), 0);
            }
            for active in active {
                let mut builder = QueryBuilder::new(format!(
                    "SELECT {column} AS key, COUNT(*) AS active FROM submissions WHERE {active}"
                ));
                if active.ends_with("> ") {
                    builder.push_bind(stale);
                }
                builder.push(format!(" AND {column} IN ("));
                let mut separated = builder.separated(", ");
                for key in &keys {
                    separated.push_bind((*key).to_owned());
                }
                builder.push(format!(") GROUP BY {column}"));
                for row in self.built(&mut builder)?.fetch_all(&mut **tx).await? {
                    let key: String = row.try_get("key")?;
                    let active: i64 = row.try_get("active")?;
                    *counts.entry(key).or_insert(0) += active;
                }
            }
        }
        Ok(())
    }

    /// Gives up a claim (the Job could not be created yet): the submission stays queued and no
    /// longer counts against its limits.
    pub async fn release_claim(&self, id: SubmissionId, job_name: &str) -> Result<()> {
        let _turn = self.turn_to_write().await;
        sqlx::query(
            "UPDATE submissions SET claimed_at = NULL \
             WHERE id = $1 AND state = 'queued' AND job_name = $2",
        )
        .bind(id.to_string())
        .bind(job_name.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the next submission of `namespace` waiting out a refusal's backoff is due.
    /// Jobs of `namespace` that wait suspended for Kueue to admit them, or are about to be
    /// created (claimed within the lease): what `--kueue-max-suspended` bounds.
    pub async fn count_suspended(&self, namespace: &str, now: Timestamp) -> Result<i64> {
        suspended_in(&self.pool, namespace, now.as_millisecond() - lease_millis()).await
    }

    pub async fn next_dispatch_at(&self, namespace: &str) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(next_dispatch_at) AS due FROM submissions \
             WHERE state = 'queued' AND namespace = $1",
        )
        .bind(namespace.to_owned())
        .fetch_one(&self.pool)
        .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.and_then(|due| Timestamp::from_millisecond(due).ok()))
    }

    /// Records a refused create of a still-queued submission whose run's Job is `job_name`:
    /// its attempts so far, when to try again, and why it waits; its claim is given up. False
    /// if it is no longer queued for that Job (cancelled, or rerun, meanwhile).
    pub async fn defer_dispatch(
        &self,
        id: SubmissionId,
        job_name: &str,
        attempts: i64,
        next: Timestamp,
        message: &str,
    ) -> Result<bool> {
        let _turn = self.turn_to_write().await;
        let result = sqlx::query(
            "UPDATE submissions SET dispatch_attempts = $1, next_dispatch_at = $2, message = $3, \
             claimed_at = NULL, updated_at = $4, version = version + 1 \
             WHERE id = $5 AND state = 'queued' AND job_name = $6",
        )
        .bind(attempts)
        .bind(next.as_millisecond())
        .bind(message.to_owned())
        .bind(Timestamp::now().to_string())
        .bind(id.to_string())
        .bind(job_name.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Which queued submissions a claim's round reads: of `namespace`, due at `now`, unclaimed
/// since `stale`, at most `limit`, unpinned or pinned to a cluster `with_room`, and not
/// `taken` by an earlier round.
struct Wanted<'a> {
    namespace: &'a str,
    now: Timestamp,
    stale: i64,
    limit: i64,
    with_room: &'a [String],
    taken: &'a [SubmissionId],
}

/// [`Store::count_suspended`] read through `reader` (the pool, or a claim's transaction),
/// claims taken after `stale` counted.
async fn suspended_in<'r>(
    reader: impl sqlx::Executor<'r, Database = Any>,
    namespace: &str,
    stale: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS waiting FROM submissions WHERE namespace = $1 AND \
         ((state = 'pending' AND admitted = 0) OR \
          (state = 'queued' AND claimed_at IS NOT NULL AND claimed_at > $2))",
    )
    .bind(namespace.to_owned())
    .bind(stale)
    .fetch_one(reader)
    .await?;
    Ok(row.try_get("waiting")?)
}

/// Takes `namespace`'s lock row for the rest of `tx`: the dispatchers of other replicas wait
/// for it, so no two count the same free place under a limit.
pub(super) async fn take_turn(tx: &mut Tx<'_>, namespace: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO dispatch_turns (namespace, taken_at) VALUES ($1, $2) \
         ON CONFLICT (namespace) DO UPDATE SET taken_at = excluded.taken_at",
    )
    .bind(namespace.to_owned())
    .bind(now.as_millisecond())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn lease_millis() -> i64 {
    i64::try_from(CLAIM_LEASE.as_millis()).unwrap_or(i64::MAX)
}
