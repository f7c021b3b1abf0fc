-- What Kueue decided of a submission's Job, on a server that submits through Kueue: whether
-- it is admitted (1) or waits suspended in its queue (0), and how often Kueue evicted it.
ALTER TABLE submissions ADD COLUMN admitted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN evictions BIGINT NOT NULL DEFAULT 0;
