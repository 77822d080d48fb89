-- A CRM record is named by its object and id: Pipedrive numbers persons,
-- deals and notes separately, so person 7 and deal 7 are two records.
-- Two leads may share one record (two leads with one e-mail are one
-- Pipedrive person), so a record's id is no longer unique.
ALTER TABLE crm_links DROP CONSTRAINT IF EXISTS crm_links_crm_crm_id_key;
CREATE INDEX crm_links_record ON crm_links (crm, object, crm_id);
