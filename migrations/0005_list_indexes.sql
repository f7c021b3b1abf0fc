-- A user's submissions in one state, newest first (`?state=running` on a user's own list):
-- one index walk that stops after a page, however many rows the user has in other states.
CREATE INDEX submissions_by_owner_state ON submissions (owner, state, id);
