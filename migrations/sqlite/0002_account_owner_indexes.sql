-- Account matching (`LeadStore::account_owner`) looks for the newest open,
-- assigned, unmerged lead of a company or corporate domain on every
-- capture. These indexes cover only the rows the query can return, in its
-- order, so each branch of the query reads at most a few index entries
-- instead of every lead of a busy domain.
DROP INDEX leads_company_key;
DROP INDEX leads_corporate_domain;
CREATE INDEX leads_owner_by_company ON leads (company_key, updated_at DESC, ext_id DESC)
    WHERE merged_into IS NULL AND assigned_to IS NOT NULL AND company_key IS NOT NULL;
CREATE INDEX leads_owner_by_domain ON leads (corporate_domain, updated_at DESC, ext_id DESC)
    WHERE merged_into IS NULL AND assigned_to IS NOT NULL AND corporate_domain IS NOT NULL;
