-- Submissions and their labels. Written in the SQL that SQLite and PostgreSQL both accept, so one
-- set of migrations serves both databases. Ids are UUIDv7 text: ordering by id is ordering by
-- creation time. Timestamps are RFC 3339 text in UTC.

CREATE TABLE submissions (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    spec        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    job_name    TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'pending', 'running', 'succeeded', 'failed', 'cancelled')),
    message     TEXT,
    active      BIGINT NOT NULL DEFAULT 0,
    succeeded   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    updated_at  TEXT NOT NULL,
    -- Bumped by every update; writers update only the version they read (optimistic locking).
    version     BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX submissions_by_state ON submissions (state, id);
CREATE INDEX submissions_by_name ON submissions (name, id);

CREATE TABLE submission_labels (
    submission_id TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (submission_id, key)
);

CREATE INDEX submission_labels_by_key_value ON submission_labels (key, value, submission_id);
