-- Webhooks: a submission may name a URL that is sent each change of its state (or only its
-- final one), signed with a secret of the token it was sent with.
--
-- Each token's signing secret, shown once when the token is created. Unlike the token itself it
-- is stored as is: the service needs it to sign. NULL for tokens created before webhooks.
ALTER TABLE tokens ADD COLUMN webhook_secret TEXT;

-- Where a submission's state changes are sent (NULL: nowhere), which ones ('all' or 'final'),
-- and the token whose secret signs them.
ALTER TABLE submissions ADD COLUMN notify_url TEXT;
ALTER TABLE submissions ADD COLUMN notify TEXT;
ALTER TABLE submissions ADD COLUMN notify_token TEXT;

-- The outbox: one row per event still to be sent, written in the transaction that records the
-- event, so a notification exists exactly when its change was committed. A row is deleted once
-- the receiver answered 2xx, and kept with `failed_at` set when its attempts ran out.
CREATE TABLE webhook_deliveries (
    revision        BIGINT PRIMARY KEY,
    submission_id   TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- Milliseconds since the Unix epoch, as every time below.
    next_attempt_at BIGINT NOT NULL,
    -- A sender's claim: its random id, and when the claim lapses if the sender died.
    lease           TEXT,
    leased_until    BIGINT,
    last_error      TEXT,
    failed_at       BIGINT
);
-- The senders' walk: the pending rows in revision order.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (revision) WHERE failed_at IS NULL;
-- Per-submission order: whether an earlier row of the same submission is still pending.
CREATE INDEX webhook_deliveries_by_submission ON webhook_deliveries (submission_id, revision)
    WHERE failed_at IS NULL;
