-- Logs of finished pods, kept after Kubernetes deletes the pods (TTL, cancel, node loss).
-- The content is base64 text so both databases store the exact bytes in the same column type.
CREATE TABLE pod_logs (
    submission_id   TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    pod_name        TEXT NOT NULL,
    -- When the pod was created: the newest pod's log is shown by default.
    pod_created_at  TEXT NOT NULL,
    content_base64  TEXT NOT NULL,
    -- Bytes dropped from the start of a log larger than the archive keeps.
    truncated_bytes BIGINT NOT NULL DEFAULT 0,
    archived_at     TEXT NOT NULL,
    PRIMARY KEY (submission_id, pod_name)
);
