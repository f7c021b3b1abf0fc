-- Idempotency keys of submit requests: a retry with the same key and the same body gets the
-- submissions the first request stored; the same key with another body is refused.
CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    -- SHA-256 of the request body in canonical JSON.
    request_hash   TEXT NOT NULL,
    -- The stored submissions' ids, as a JSON array in request order.
    submission_ids TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
