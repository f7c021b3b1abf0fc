-- Campaigns: submissions that wait for others to succeed (the state `waiting`), and limits on
-- how many Jobs of one user, or of one batch's group, run at once.
--
-- The state's CHECK gains `waiting`. SQLite cannot change a CHECK in place, so the table is
-- rebuilt; its two child tables are rebuilt with it, so that dropping the old table cascades
-- to no label and no log (their foreign keys name the new table, and follow its rename).

CREATE TABLE submissions_next (
    id                TEXT PRIMARY KEY,
    name              TEXT,
    spec              TEXT NOT NULL,
    namespace         TEXT NOT NULL,
    job_name          TEXT NOT NULL UNIQUE,
    state             TEXT NOT NULL CHECK (state IN ('waiting', 'queued', 'pending', 'running', 'succeeded', 'failed', 'cancelled')),
    message           TEXT,
    active            BIGINT NOT NULL DEFAULT 0,
    succeeded         BIGINT NOT NULL DEFAULT 0,
    failed            BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    updated_at        TEXT NOT NULL,
    version           BIGINT NOT NULL DEFAULT 0,
    owner             TEXT NOT NULL DEFAULT '',
    submitted_by      TEXT NOT NULL DEFAULT '',
    dispatch_attempts BIGINT NOT NULL DEFAULT 0,
    next_dispatch_at  BIGINT,
    -- Dependencies not succeeded yet; a `waiting` submission is queued when this reaches 0.
    waiting_on        BIGINT NOT NULL DEFAULT 0,
    -- When a dispatcher took this queued submission to create its Job (ms since the epoch):
    -- it counts against its user's and its group's limits from then on.
    claimed_at        BIGINT,
    -- The batch it was sent in, when that batch limited how many of its Jobs run at once
    -- (`max_concurrent`), and that limit.
    group_id          TEXT,
    group_limit       BIGINT,
    -- Its user's limit of active Jobs, as the token it was sent with set it; NULL: the
    -- server's (`--max-concurrent`).
    user_limit        BIGINT
);

INSERT INTO submissions_next (id, name, spec, namespace, job_name, state, message, active,
    succeeded, failed, created_at, started_at, finished_at, updated_at, version, owner,
    submitted_by, dispatch_attempts, next_dispatch_at)
SELECT id, name, spec, namespace, job_name, state, message, active, succeeded, failed,
    created_at, started_at, finished_at, updated_at, version, owner, submitted_by,
    dispatch_attempts, next_dispatch_at
FROM submissions;

CREATE TABLE submission_labels_next (
    submission_id TEXT NOT NULL REFERENCES submissions_next (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (submission_id, key)
);
INSERT INTO submission_labels_next (submission_id, key, value)
SELECT submission_id, key, value FROM submission_labels;

CREATE TABLE pod_logs_next (
    submission_id   TEXT NOT NULL REFERENCES submissions_next (id) ON DELETE CASCADE,
    pod_name        TEXT NOT NULL,
    pod_created_at  TEXT NOT NULL,
    content_base64  TEXT NOT NULL,
    truncated_bytes BIGINT NOT NULL DEFAULT 0,
    archived_at     TEXT NOT NULL,
    PRIMARY KEY (submission_id, pod_name)
);
INSERT INTO pod_logs_next (submission_id, pod_name, pod_created_at, content_base64,
    truncated_bytes, archived_at)
SELECT submission_id, pod_name, pod_created_at, content_base64, truncated_bytes, archived_at
FROM pod_logs;

DROP TABLE submission_labels;
DROP TABLE pod_logs;
DROP TABLE submissions;
ALTER TABLE submissions_next RENAME TO submissions;
ALTER TABLE submission_labels_next RENAME TO submission_labels;
ALTER TABLE pod_logs_next RENAME TO pod_logs;

CREATE INDEX submissions_by_state ON submissions (state, id);
CREATE INDEX submissions_by_name ON submissions (name, id);
CREATE INDEX submissions_by_owner ON submissions (owner, id);
CREATE INDEX submissions_by_owner_state ON submissions (owner, state, id);
CREATE INDEX submission_labels_by_key_value ON submission_labels (key, value, submission_id);
-- The queued submissions a dispatcher has taken, per user and per group: what counts against
-- a limit besides the Jobs that exist.
CREATE INDEX submissions_claimed_by_owner ON submissions (owner, claimed_at)
    WHERE state = 'queued' AND claimed_at IS NOT NULL;
CREATE INDEX submissions_by_group_state ON submissions (group_id, state, claimed_at)
    WHERE group_id IS NOT NULL;

-- Which submissions each one waits for; read from the dependency's side when it ends.
CREATE TABLE submission_dependencies (
    submission_id TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    depends_on    TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    PRIMARY KEY (submission_id, depends_on)
);
CREATE INDEX submission_dependencies_by_dependency
    ON submission_dependencies (depends_on, submission_id);

-- A token's own limit of its user's active Jobs (NULL: the server's).
ALTER TABLE tokens ADD COLUMN max_concurrent BIGINT;

-- Dispatchers of one namespace take queued submissions one at a time, across replicas: each
-- takes this row's lock first, so two never count the same free slot.
CREATE TABLE dispatch_turns (
    namespace TEXT PRIMARY KEY,
    taken_at  BIGINT NOT NULL
);
