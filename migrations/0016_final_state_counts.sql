-- How many submissions each final state holds, as of the event revision named 'counted' in
-- `event_revisions`. `/metrics` reads these few rows and the events committed since, instead of
-- counting a table of millions at its first scrape after a start; the service keeps them
-- current (`Store::final_counts`, `Store::save_final_counts`). Counted here once, when the
-- table is made.
CREATE TABLE final_state_counts (
    state TEXT PRIMARY KEY,
    count BIGINT NOT NULL
);
INSERT INTO final_state_counts (state, count)
    SELECT state, COUNT(*) FROM submissions
    WHERE state IN ('succeeded', 'failed', 'cancelled')
    GROUP BY state;
INSERT INTO event_revisions (name, revision)
    SELECT 'counted', revision FROM event_revisions WHERE name = 'allocated';
