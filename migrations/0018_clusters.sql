-- Several clusters behind one API. `cluster` names the cluster a submission's Job is created
-- in: chosen when the dispatcher claims it (under the claims' lock, so that caps of active
-- Jobs per cluster hold across replicas), and kept while the Job lives. `pin` is the cluster
-- a submission asked for (its `cluster` field), if any: it is placed there and nowhere else.
-- Submissions stored before either had a Job in the one cluster there was, `default`.
ALTER TABLE submissions ADD COLUMN cluster TEXT;
ALTER TABLE submissions ADD COLUMN pin TEXT;
UPDATE submissions SET cluster = 'default'
    WHERE state NOT IN ('waiting', 'queued') OR claimed_at IS NOT NULL;
CREATE INDEX submissions_by_cluster ON submissions (cluster, state);
-- The Jobs left in a cluster that stopped answering for longer than `--cluster-lost-after`,
-- whose submissions were run again elsewhere: each is deleted (its log archived first, if it
-- can be read) once its cluster answers again, so that a submission has one live Job.
CREATE TABLE abandoned_jobs (
    cluster       TEXT NOT NULL,
    job_name      TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    abandoned_at  TEXT NOT NULL,
    PRIMARY KEY (cluster, job_name)
);
