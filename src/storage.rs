//! Storage: every SQL statement the service runs, against SQLite or PostgreSQL.
//!
//! One set of statements serves both databases through sqlx's `Any` driver: the SQL is the common
//! subset (`$n` placeholders, `RETURNING`, text and bigint columns), so the same test suite proves
//! both. Rows are written with optimistic locking (a `version` column) so the watchers, the
//! dispatcher and request handlers can update one submission concurrently without losing a write.
//!
//! Statements are assembled only from the constants below, our own state names and numbered
//! placeholders; every value a user sent is bound, never spliced (hence `AssertSqlSafe`).

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::domain::{Progress, State, Submission, SubmissionId, SubmissionSpec};

/// What can go wrong in storage. Never shown to clients as is: the HTTP layer logs it and
/// answers with a generic 500.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("submission {0} kept changing under concurrent updates")]
    Contended(SubmissionId),
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which submissions a list or bulk cancel is about. Empty criteria match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this user's submissions.
    pub owner: Option<String>,
    pub ids: Vec<SubmissionId>,
    pub states: Vec<State>,
    pub name: Option<String>,
    pub labels: Vec<(String, String)>,
}

/// A page of a newest-first listing: at most `limit` rows older than `before`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub before: Option<SubmissionId>,
}

/// An `Idempotency-Key` and the fingerprint of the request body it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// What an idempotent insert did.
#[derive(Debug)]
pub enum Stored {
    New,
    /// The key was used before with the same body: these are that request's submissions.
    Replayed(Vec<Submission>),
    /// The key was used before with another body.
    KeyReused,
}

/// A pod's log as archived when the pod finished.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedLog {
    pub pod_name: String,
    pub content: Vec<u8>,
    /// Bytes dropped from the start because the log was larger than the archive keeps.
    pub truncated_bytes: u64,
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub user: String,
    pub admin: bool,
    pub delegate: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The stored form of a token's secret.
fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The result of asking for an update: whether the row changed, and the row as it is now.
#[derive(Debug, Clone)]
pub struct Updated {
    pub changed: bool,
    pub submission: Submission,
}

const COLUMNS: &str = "id, spec, namespace, job_name, state, message, active, succeeded, failed, \
                       created_at, started_at, finished_at, version, owner, submitted_by";

/// Rows per multi-row INSERT: well under SQLite's limit of 32766 bound parameters.
const INSERT_CHUNK: usize = 500;

/// Retries of an optimistic update before giving up; contention on one row is brief.
const UPDATE_ATTEMPTS: usize = 20;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects, creating an SQLite file if needed, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = sqlite_creates_file(url);
        let is_sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 8 } else { 16 })
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        // WAL lets readers run beside the single writer; the busy timeout makes
                        // writers queue instead of failing; foreign keys are off by default.
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores new submissions, all or none, in one transaction.
    pub async fn insert(&self, submissions: &[Submission]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_rows(&mut tx, submissions).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores new submissions under an idempotency key, unless the key was used before: then
    /// nothing is stored and the earlier request's submissions are returned (same body) or the
    /// reuse is reported (another body). Concurrent requests with one key store once.
    pub async fn insert_idempotent(
        &self,
        key: &IdempotencyKey,
        submissions: &[Submission],
    ) -> Result<Stored> {
        let ids: Vec<String> = submissions.iter().map(|s| s.id.to_string()).collect();
        let ids = serde_json::to_string(&ids).map_err(|error| StorageError::Corrupt {
            id: "new".into(),
            reason: error.to_string(),
        })?;
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, submission_ids, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.key.clone())
        .bind(key.fingerprint.clone())
        .bind(ids)
        .bind(Timestamp::now().to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            insert_rows(&mut tx, submissions).await?;
            tx.commit().await?;
            return Ok(Stored::New);
        }
        tx.rollback().await?;

        let row =
            sqlx::query("SELECT request_hash, submission_ids FROM idempotency_keys WHERE key = $1")
                .bind(key.key.clone())
                .fetch_one(&self.pool)
                .await?;
        let hash: String = row.try_get("request_hash")?;
        if hash != key.fingerprint {
            return Ok(Stored::KeyReused);
        }
        let ids_text: String = row.try_get("submission_ids")?;
        let corrupt = |reason: String| StorageError::Corrupt {
            id: key.key.clone(),
            reason,
        };
        let ids: Vec<String> =
            serde_json::from_str(&ids_text).map_err(|error| corrupt(error.to_string()))?;
        let mut earlier = Vec::with_capacity(ids.len());
        for id in ids {
            let id = SubmissionId::from_str(&id).map_err(|error| corrupt(error.to_string()))?;
            let submission = self
                .get(id)
                .await?
                .ok_or_else(|| corrupt(format!("submission {id} is missing")))?;
            earlier.push(submission);
        }
        Ok(Stored::Replayed(earlier))
    }

    pub async fn get(&self, id: SubmissionId) -> Result<Option<Submission>> {
        Ok(self
            .get_versioned(id)
            .await?
            .map(|(submission, _)| submission))
    }

    async fn get_versioned(&self, id: SubmissionId) -> Result<Option<(Submission, i64)>> {
        let sql = format!("SELECT {COLUMNS} FROM submissions WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| from_row(&row)).transpose()
    }

    /// Newest first, filtered, one page.
    pub async fn list(&self, filter: &Filter, page: Page) -> Result<Vec<Submission>> {
        let mut conditions = Conditions::from_filter(filter);
        if let Some(before) = page.before {
            conditions.push("s.id < $?", before.to_string());
        }
        let sql = format!(
            "SELECT {} FROM submissions s {} ORDER BY s.id DESC LIMIT {}",
            qualified_columns(),
            conditions.where_clause(),
            page.limit
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in &conditions.values {
            query = query.bind(value.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(from_row(row)?.0)).collect()
    }

    /// The oldest submissions still waiting for their Job, for the dispatcher.
    pub async fn queued(&self, limit: u32) -> Result<Vec<Submission>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM submissions WHERE state = 'queued' ORDER BY id LIMIT {limit}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(from_row(row)?.0)).collect()
    }

    /// How many submissions are in each state (for `/metrics`).
    pub async fn count_by_state(&self) -> Result<Vec<(State, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS count FROM submissions GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = Vec::new();
        for row in &rows {
            let state: String = row.try_get("state")?;
            let count: i64 = row.try_get("count")?;
            let state = State::from_str(&state).map_err(|error| StorageError::Corrupt {
                id: "state count".into(),
                reason: error.to_string(),
            })?;
            counts.push((state, count));
        }
        Ok(counts)
    }

    /// Submissions whose Job has been created and has not ended, for reconciling with the cluster.
    pub async fn with_live_jobs(&self) -> Result<Vec<Submission>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM submissions WHERE state IN ('pending', 'running') ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(from_row(row)?.0)).collect()
    }

    /// Creates a token for `user` and returns it with its secret, which is not stored.
    pub async fn create_token(
        &self,
        user: &str,
        admin: bool,
        delegate: bool,
    ) -> Result<(Token, String)> {
        let secret = format!(
            "sht_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = Token {
            id: uuid::Uuid::now_v7().to_string(),
            user: user.to_owned(),
            admin,
            delegate,
            created_at: Timestamp::now().to_string(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO tokens (id, user_name, secret_hash, admin, delegate, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.clone())
        .bind(token.user.clone())
        .bind(secret_hash(&secret))
        .bind(i64::from(admin))
        .bind(i64::from(delegate))
        .bind(token.created_at.clone())
        .execute(&self.pool)
        .await?;
        Ok((token, secret))
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query(
            "SELECT id, user_name, admin, delegate, created_at, revoked_at FROM tokens ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token; false if there is no such token or it was revoked already.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let result =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(Timestamp::now().to_string())
                .bind(id.to_owned())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The unrevoked token with this secret.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Token>> {
        let row = sqlx::query(
            "SELECT id, user_name, admin, delegate, created_at, revoked_at FROM tokens \
             WHERE secret_hash = $1 AND revoked_at IS NULL",
        )
        .bind(secret_hash(secret))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Keeps a pod's log (replacing an earlier copy of the same pod's log).
    pub async fn archive_log(
        &self,
        id: SubmissionId,
        pod_created_at: Timestamp,
        log: &ArchivedLog,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pod_logs (submission_id, pod_name, pod_created_at, content_base64, \
             truncated_bytes, archived_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (submission_id, pod_name) DO UPDATE SET content_base64 = $4, \
             truncated_bytes = $5, archived_at = $6",
        )
        .bind(id.to_string())
        .bind(log.pod_name.clone())
        .bind(pod_created_at.to_string())
        .bind(BASE64.encode(&log.content))
        .bind(i64::try_from(log.truncated_bytes).unwrap_or(i64::MAX))
        .bind(Timestamp::now().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The names of the pods of a submission whose log is archived.
    pub async fn archived_pods(&self, id: SubmissionId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT pod_name FROM pod_logs WHERE submission_id = $1")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("pod_name")?))
            .collect()
    }

    /// An archived log: of the named pod, or of the submission's newest pod.
    pub async fn archived_log(
        &self,
        id: SubmissionId,
        pod_name: Option<&str>,
    ) -> Result<Option<ArchivedLog>> {
        let row = sqlx::query(
            "SELECT pod_name, content_base64, truncated_bytes FROM pod_logs \
             WHERE submission_id = $1 AND ($2 = '' OR pod_name = $2) \
             ORDER BY pod_created_at DESC, pod_name DESC LIMIT 1",
        )
        .bind(id.to_string())
        .bind(pod_name.unwrap_or_default().to_owned())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let pod_name: String = row.try_get("pod_name")?;
        let encoded: String = row.try_get("content_base64")?;
        let content = BASE64
            .decode(encoded)
            .map_err(|error| StorageError::Corrupt {
                id: format!("{id}/{pod_name}"),
                reason: error.to_string(),
            })?;
        let truncated: i64 = row.try_get("truncated_bytes")?;
        Ok(Some(ArchivedLog {
            pod_name,
            content,
            truncated_bytes: u64::try_from(truncated).unwrap_or_default(),
        }))
    }

    /// Reads a submission, lets `decide` compute its next progress, and writes it if it is
    /// still the version that was read; retries when another writer got there first.
    ///
    /// `decide` returns `None` to leave the row alone. Returns `None` if there is no such row.
    pub async fn update(
        &self,
        id: SubmissionId,
        mut decide: impl FnMut(&Submission) -> Option<Progress>,
    ) -> Result<Option<Updated>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((mut submission, version)) = self.get_versioned(id).await? else {
                return Ok(None);
            };
            let Some(progress) = decide(&submission) else {
                return Ok(Some(Updated {
                    changed: false,
                    submission,
                }));
            };
            if progress == submission.progress {
                return Ok(Some(Updated {
                    changed: false,
                    submission,
                }));
            }
            let result = sqlx::query(
                "UPDATE submissions SET state = $1, message = $2, active = $3, succeeded = $4, \
                 failed = $5, started_at = $6, finished_at = $7, updated_at = $8, \
                 version = version + 1 WHERE id = $9 AND version = $10",
            )
            .bind(progress.state.as_str())
            .bind(progress.message.clone())
            .bind(progress.active)
            .bind(progress.succeeded)
            .bind(progress.failed)
            .bind(progress.started_at.map(|at| at.to_string()))
            .bind(progress.finished_at.map(|at| at.to_string()))
            .bind(Timestamp::now().to_string())
            .bind(id.to_string())
            .bind(version)
            .execute(&self.pool)
            .await?;
            if result.rows_affected() == 1 {
                submission.progress = progress;
                return Ok(Some(Updated {
                    changed: true,
                    submission,
                }));
            }
        }
        Err(StorageError::Contended(id))
    }

    /// Marks every active submission that matches `filter` as cancelled, in one statement,
    /// and returns them.
    pub async fn cancel_matching(&self, filter: &Filter, message: &str) -> Result<Vec<Submission>> {
        let mut conditions = Conditions::from_filter(filter);
        conditions.push_raw("s.state IN ('queued', 'pending', 'running')");
        let now = Timestamp::now().to_string();
        let first = conditions.values.len() + 1;
        let sql = format!(
            "UPDATE submissions SET state = 'cancelled', message = ${}, finished_at = ${}, \
             updated_at = ${}, version = version + 1 \
             WHERE id IN (SELECT s.id FROM submissions s {}) RETURNING {COLUMNS}",
            first,
            first + 1,
            first + 1,
            conditions.where_clause()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in &conditions.values {
            query = query.bind(value.clone());
        }
        let rows = query
            .bind(message.to_owned())
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let mut cancelled = rows
            .iter()
            .map(|row| Ok(from_row(row)?.0))
            .collect::<Result<Vec<_>>>()?;
        cancelled.sort_by_key(|submission| std::cmp::Reverse(submission.id));
        Ok(cancelled)
    }
}

/// Inserts submissions and their labels inside `tx`, in multi-row statements.
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    submissions: &[Submission],
) -> Result<()> {
    for chunk in submissions.chunks(INSERT_CHUNK) {
        let specs = chunk
            .iter()
            .map(|submission| serde_json::to_string(&submission.spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StorageError::Corrupt {
                id: "new".into(),
                reason: error.to_string(),
            })?;
        let sql = format!(
            "INSERT INTO submissions (id, name, spec, namespace, job_name, state, created_at, updated_at, owner, submitted_by) VALUES {}",
            placeholders(chunk.len(), 10)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (submission, spec) in chunk.iter().zip(specs) {
            let created_at = submission.created_at.to_string();
            query = query
                .bind(submission.id.to_string())
                .bind(submission.spec.name.clone())
                .bind(spec)
                .bind(submission.namespace.clone())
                .bind(submission.job_name.clone())
                .bind(submission.progress.state.as_str())
                .bind(created_at.clone())
                .bind(created_at)
                .bind(submission.owner.clone())
                .bind(submission.submitted_by.clone());
        }
        query.execute(&mut **tx).await?;

        let labels: Vec<_> = chunk
            .iter()
            .flat_map(|submission| {
                submission
                    .spec
                    .labels
                    .iter()
                    .map(move |(key, value)| (submission.id, key, value))
            })
            .collect();
        for labels in labels.chunks(INSERT_CHUNK * 4) {
            let sql = format!(
                "INSERT INTO submission_labels (submission_id, key, value) VALUES {}",
                placeholders(labels.len(), 3)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (id, key, value) in labels {
                query = query
                    .bind(id.to_string())
                    .bind(key.to_string())
                    .bind(value.to_string());
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Makes a plain SQLite URL create its file on first start, as users of the default expect.
fn sqlite_creates_file(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains("mode=") || url.contains(":memory:") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn qualified_columns() -> String {
    COLUMNS
        .split(", ")
        .map(|column| format!("s.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A WHERE clause built from a filter, with its bound values in order.
struct Conditions {
    clauses: Vec<String>,
    values: Vec<String>,
}

impl Conditions {
    fn from_filter(filter: &Filter) -> Self {
        let mut conditions = Conditions {
            clauses: Vec::new(),
            values: Vec::new(),
        };
        for id in &filter.ids {
            conditions.push("s.id = $?", id.to_string());
        }
        if filter.ids.len() > 1 {
            // Several ids are alternatives, not conditions that must all hold.
            let ids = conditions
                .clauses
                .drain(..)
                .collect::<Vec<_>>()
                .join(" OR ");
            conditions.clauses.push(format!("({ids})"));
        }
        if let Some(owner) = &filter.owner {
            conditions.push("s.owner = $?", owner.clone());
        }
        if !filter.states.is_empty() {
            // States are a closed set of our own words, so they are inlined, not bound.
            let states: Vec<String> = filter
                .states
                .iter()
                .map(|state| format!("'{}'", state.as_str()))
                .collect();
            conditions.push_raw(&format!("s.state IN ({})", states.join(", ")));
        }
        if let Some(name) = &filter.name {
            conditions.push("s.name = $?", name.clone());
        }
        for (key, value) in &filter.labels {
            let key_at = conditions.values.len() + 1;
            conditions.clauses.push(format!(
                "EXISTS (SELECT 1 FROM submission_labels l WHERE l.submission_id = s.id \
                 AND l.key = ${key_at} AND l.value = ${})",
                key_at + 1
            ));
            conditions.values.push(key.clone());
            conditions.values.push(value.clone());
        }
        conditions
    }

    /// Adds a clause with one bound value, written as `$?` in `clause`.
    fn push(&mut self, clause: &str, value: String) {
        self.values.push(value);
        self.clauses
            .push(clause.replace("$?", &format!("${}", self.values.len())));
    }

    fn push_raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn token_from_row(row: &AnyRow) -> Result<Token> {
    let admin: i64 = row.try_get("admin")?;
    let delegate: i64 = row.try_get("delegate")?;
    Ok(Token {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        admin: admin != 0,
        delegate: delegate != 0,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn from_row(row: &AnyRow) -> Result<(Submission, i64)> {
    let id_text: String = row.try_get("id")?;
    let corrupt = |reason: String| StorageError::Corrupt {
        id: id_text.clone(),
        reason,
    };
    let timestamp = |column: &str| -> Result<Option<Timestamp>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|text| {
            Timestamp::from_str(&text).map_err(|error| corrupt(format!("{column}: {error}")))
        })
        .transpose()
    };
    let id = SubmissionId::from_str(&id_text).map_err(|error| corrupt(error.to_string()))?;
    let spec_text: String = row.try_get("spec")?;
    let spec: SubmissionSpec =
        serde_json::from_str(&spec_text).map_err(|error| corrupt(format!("spec: {error}")))?;
    let state_text: String = row.try_get("state")?;
    let state = State::from_str(&state_text).map_err(|error| corrupt(error.to_string()))?;
    let submission = Submission {
        id,
        spec,
        owner: row.try_get("owner")?,
        submitted_by: row.try_get("submitted_by")?,
        namespace: row.try_get("namespace")?,
        job_name: row.try_get("job_name")?,
        created_at: timestamp("created_at")?.ok_or_else(|| corrupt("created_at is null".into()))?,
        progress: Progress {
            state,
            message: row.try_get("message")?,
            active: row.try_get("active")?,
            succeeded: row.try_get("succeeded")?,
            failed: row.try_get("failed")?,
            started_at: timestamp("started_at")?,
            finished_at: timestamp("finished_at")?,
        },
    };
    Ok((submission, row.try_get("version")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }

    #[test]
    fn sqlite_urls_create_their_file_unless_told_otherwise() {
        assert_eq!(
            sqlite_creates_file("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_creates_file("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            sqlite_creates_file("postgres://u@h/db"),
            "postgres://u@h/db"
        );
    }
}
