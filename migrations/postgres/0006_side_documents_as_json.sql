-- Like lead documents (0005): event properties, follow-up task documents,
-- outbox payloads, merge records and rep profiles are written and read whole, never
-- looked into in SQL, so `json` (text kept as written, still validated)
-- spares every capture three JSONB parses. It also keeps what JSONB
-- refuses: a lead whose free-form metadata holds `\u0000` is stored in
-- `leads.doc` (json since 0005), so its merge record must be storable too.
-- Measured in docs/perf.md ("HTTP captures").
ALTER TABLE lead_events ALTER COLUMN properties TYPE json USING properties::json;
ALTER TABLE sales_followup_tasks ALTER COLUMN doc TYPE json USING doc::json;
ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE dead_letters ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE merge_records ALTER COLUMN doc TYPE json USING doc::json;
ALTER TABLE reps ALTER COLUMN profile TYPE json USING profile::json;
