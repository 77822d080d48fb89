-- Each outbox entry is for one consumer (its destination: `crm` for the
-- CRM sync, later notifications and webhooks); a consumer claims only its
-- own. Entries written before this column were all for the CRM.
ALTER TABLE outbox ADD COLUMN destination TEXT NOT NULL DEFAULT 'crm';
ALTER TABLE dead_letters ADD COLUMN destination TEXT NOT NULL DEFAULT 'crm';
DROP INDEX outbox_available;
CREATE INDEX outbox_available ON outbox (destination, available_at, seq);
CREATE INDEX dead_letters_destination ON dead_letters (destination, seq);
