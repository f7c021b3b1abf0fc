-- Every change of a submission's state, under a revision: what `GET /v1/events` streams, and
-- where a client that reconnects resumes (`Last-Event-ID`, `?after=`).
--
-- Revisions are handed out by the row 'allocated' of `event_revisions`, which each transaction
-- that records events advances once (by as many as it records) just before it commits. The
-- update holds that row's lock until the commit, so transactions commit in the order of their
-- revisions: a reader that sees revision N sees every revision below it, and a stream that
-- reads `revision > last` never skips one (a sequence would hand out 7 to a transaction that
-- commits before the one holding 6). A transaction rolled back gives its revisions back.
-- The row 'pruned' is the newest revision deleted by retention: resuming before it is refused.
CREATE TABLE event_revisions (
    name     TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO event_revisions (name, revision) VALUES ('allocated', 0), ('pruned', 0);

CREATE TABLE submission_events (
    revision       BIGINT PRIMARY KEY,
    submission_id  TEXT NOT NULL,
    -- The submission's owner, so a user's stream walks only their events.
    owner          TEXT NOT NULL,
    -- NULL for the state a submission was stored in.
    previous_state TEXT,
    state          TEXT NOT NULL,
    message        TEXT,
    -- Milliseconds since the Unix epoch.
    at_ms          BIGINT NOT NULL
);
CREATE INDEX submission_events_by_owner ON submission_events (owner, revision);

-- The state a request's cancel found a submission in, written by the cancel's own update (its
-- right side reads the row as it was), so the cancel's event names the state it left even when
-- the submission moved on between choosing it and writing it.
ALTER TABLE submissions ADD COLUMN cancelled_from TEXT;
