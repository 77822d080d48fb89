-- Housekeeping (the scheduled-jobs issue): delivery marks in
-- sync_watermarks are deleted some days after they were written, so each
-- row now says when. Rows already there count as written now.
ALTER TABLE sync_watermarks ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE sync_watermarks SET updated_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT;
CREATE INDEX job_runs_finished ON job_runs (finished_at);
