-- Creates of a submission's Job the API server refused (403 from RBAC, a quota or an admission
-- policy; 404 for a missing namespace), and when the next may be tried: a refused submission
-- waits out its own backoff and fails after a few attempts, and the submissions behind it are
-- dispatched meanwhile.
ALTER TABLE submissions ADD COLUMN dispatch_attempts BIGINT NOT NULL DEFAULT 0;
-- Milliseconds since the Unix epoch; NULL: as soon as the dispatcher gets to it.
ALTER TABLE submissions ADD COLUMN next_dispatch_at BIGINT;
