-- Listing follow-up tasks (`LeadStore::followups`): soonest due first,
-- keyset-paged on (due_at, id). Each index serves one kind of filter in
-- that order, so a page reads about as many index entries as it returns:
-- a rep's to-do list (their tasks, usually the open ones), the tasks in
-- one status, and everything or a due window. The per-status index of
-- 0001 lacked the id that orders tasks due at the same instant.
CREATE INDEX sales_followup_tasks_rep ON sales_followup_tasks (assigned_to, status, due_at, id);
DROP INDEX sales_followup_tasks_due;
CREATE INDEX sales_followup_tasks_status ON sales_followup_tasks (status, due_at, id);
CREATE INDEX sales_followup_tasks_due_id ON sales_followup_tasks (due_at, id);
