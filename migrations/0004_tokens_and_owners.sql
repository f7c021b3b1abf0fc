-- Who may call the API, and who owns each submission. Tokens are stored only as SHA-256 hashes:
-- they are random and long, so a fast hash is enough and a leaked table reveals no token.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    -- Admins see and cancel every user's submissions.
    admin       BIGINT NOT NULL DEFAULT 0,
    -- Delegates (portals, dashboards) may act for any user with X-On-Behalf-Of.
    delegate    BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- The user a submission belongs to, and the token user who sent it (a delegate, or the owner).
ALTER TABLE submissions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN submitted_by TEXT NOT NULL DEFAULT '';
CREATE INDEX submissions_by_owner ON submissions (owner, id);
