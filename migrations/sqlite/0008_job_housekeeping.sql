-- Housekeeping (the scheduled-jobs issue): delivery marks in
-- sync_watermarks are deleted some days after they were written, so each
-- row now says when. Rows already there count as written now.
ALTER TABLE sync_watermarks ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE sync_watermarks SET updated_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER);
CREATE INDEX job_runs_finished ON job_runs (finished_at);
