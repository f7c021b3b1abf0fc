-- Tokens may expire, say what they are for, and show when they were last used. `last_used_at` is
-- written at most about once a minute per token, never once per request.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
ALTER TABLE tokens ADD COLUMN description TEXT;
