-- Through Kueue, the Jobs of submissions under a limit of concurrent Jobs (`--max-concurrent`,
-- a token's or a batch's) are created with Kueue's admission gate, so that they wait in their
-- queue without Kueue admitting them; the dispatcher removes the gate while the limit has room
-- (`Store::open_gates`). 1 while the gate is on. The limits count only the Jobs whose gate is
-- off: admitted, or free to be.
ALTER TABLE submissions ADD COLUMN gated BIGINT NOT NULL DEFAULT 0;
CREATE INDEX submissions_gated ON submissions (namespace, id) WHERE gated = 1;
