-- What each executor of a TES task's pod did, read when the pod ended and before the task is
-- shown as ended, so that a client finds every exit code once it sees a final state, and the
-- output outlives the pod. The content is base64 text, as in pod_logs.
CREATE TABLE tes_executor_logs (
    submission_id   TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    pod_name        TEXT NOT NULL,
    -- When the pod was created: the newest pod's runs are shown.
    pod_created_at  TEXT NOT NULL,
    executor        BIGINT NOT NULL,
    exit_code       BIGINT NOT NULL,
    start_time      TEXT,
    end_time        TEXT,
    output_base64   TEXT NOT NULL,
    truncated_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (submission_id, pod_name, executor)
);

-- What the service says of a task itself (a backend parameter it dropped), as a JSON array of
-- lines shown in the FULL view's system_logs.
ALTER TABLE tes_tasks ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';

-- What the service's own steps of the task's last pod said, as a JSON object: the inputs it did
-- not find on the volume, and each output it copied (its place in the task's outputs, the path
-- of a pattern's match, its size; no size: not written).
ALTER TABLE tes_tasks ADD COLUMN pod_report TEXT NOT NULL DEFAULT '{}';
