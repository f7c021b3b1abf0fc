-- Reruns: how often a submission was run again under its id (by a user's rerun, or after an
-- out-of-memory kill under its retry policy), and whether it ended only because a dependency
-- failed or was cancelled (a rerun of that dependency brings it back).
ALTER TABLE submissions ADD COLUMN reruns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN cascaded BIGINT NOT NULL DEFAULT 0;
-- The reruns after a kill for memory since the last user's rerun (`on_oom.max_reruns`).
ALTER TABLE submissions ADD COLUMN oom_reruns BIGINT NOT NULL DEFAULT 0;
