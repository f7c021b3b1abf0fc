-- Each pod of a submission as it ended (exit code, reason, memory, whether it was disrupted),
-- recorded when it ended and kept after Kubernetes deletes it. Whether it used a retry follows
-- from these and the submission's retry policy.
CREATE TABLE pod_attempts (
    submission_id  TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    pod_name       TEXT NOT NULL,
    pod_created_at TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    exit_code      BIGINT,
    reason         TEXT,
    memory         TEXT,
    -- 1 if it had the DisruptionTarget condition (evicted, preempted, drained), else 0.
    disrupted      BIGINT NOT NULL,
    PRIMARY KEY (submission_id, pod_name)
);
