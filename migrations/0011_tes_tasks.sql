-- GA4GH TES tasks: each is a submission (same id), with the TES document as sent and its tags.
-- The TES state is read from the submission's own state, so it is not stored twice.
CREATE TABLE tes_tasks (
    submission_id TEXT PRIMARY KEY REFERENCES submissions (id) ON DELETE CASCADE,
    -- The name's UTF-8 bytes in lowercase hex: a literal, case-sensitive prefix is a range in
    -- every collation of either database.
    name_hex      TEXT NOT NULL DEFAULT '',
    -- The task as sent (canonical JSON), less the service's own fields.
    document      TEXT NOT NULL
);
CREATE INDEX tes_tasks_by_name ON tes_tasks (name_hex, submission_id);

CREATE TABLE tes_task_tags (
    submission_id TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (submission_id, key)
);
CREATE INDEX tes_task_tags_by_key_value ON tes_task_tags (key, value, submission_id);
