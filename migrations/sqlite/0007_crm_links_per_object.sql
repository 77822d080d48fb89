-- A CRM record is named by its object and id: Pipedrive numbers persons,
-- deals and notes separately, so person 7 and deal 7 are two records.
-- Two leads may share one record (two leads with one e-mail are one
-- Pipedrive person), so a record's id is no longer unique.
CREATE TABLE crm_links_new (
    lead   TEXT NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    crm    TEXT NOT NULL,
    object TEXT NOT NULL,
    crm_id TEXT NOT NULL
) STRICT;
INSERT INTO crm_links_new (lead, crm, object, crm_id)
    SELECT lead, crm, object, crm_id FROM crm_links;
DROP TABLE crm_links;
ALTER TABLE crm_links_new RENAME TO crm_links;
CREATE INDEX crm_links_lead ON crm_links (lead);
CREATE INDEX crm_links_record ON crm_links (crm, object, crm_id);
