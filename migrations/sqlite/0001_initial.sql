-- The embedded store's schema (lead-store-sqlite).
--
-- Conventions: timestamps are INTEGER microseconds since the Unix epoch (UTC),
-- so ordering and cursor comparisons are integer comparisons; JSON values are
-- TEXT; enums are their lower-case wire names. `leads.doc` holds the complete
-- lead as JSON and is what reads return; every other column of `leads` is a
-- projection of it that SQL filters, orders or aggregates on.

CREATE TABLE leads (
    ext_id           TEXT    NOT NULL PRIMARY KEY,
    email            TEXT    NOT NULL,
    -- lead_core::email_match_key(email): what uniqueness is decided on.
    email_key        TEXT    NOT NULL,
    -- lead_core::MatchKeys company_key() / corporate_domain(): account matching.
    company_key      TEXT,
    corporate_domain TEXT,
    stage            TEXT    NOT NULL,
    priority         TEXT    NOT NULL,
    score            INTEGER NOT NULL,
    assigned_to      TEXT,
    -- Source lower-cased (Unicode), as the dashboard groups it.
    source           TEXT,
    -- Source as written; the list filter compares it ASCII-case-insensitively.
    source_raw       TEXT,
    -- JSON array of the lower-cased e-mail, first name, last name and company
    -- (Unicode lower-casing done in Rust: SQLite's lower() is ASCII-only).
    search_text      TEXT    NOT NULL,
    -- JSON array of segment names.
    segments         TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    merged_into      TEXT,
    version          INTEGER NOT NULL,
    doc              TEXT    NOT NULL
) STRICT;

-- Two unmerged leads never share a folded e-mail.
CREATE UNIQUE INDEX leads_email_key_unmerged ON leads (email_key) WHERE merged_into IS NULL;
-- Listing order and cursor paging.
CREATE INDEX leads_created ON leads (created_at DESC, ext_id DESC);
-- List filters.
CREATE INDEX leads_stage ON leads (stage, created_at DESC);
CREATE INDEX leads_priority ON leads (priority, created_at DESC);
CREATE INDEX leads_assigned_to ON leads (assigned_to, created_at DESC);
CREATE INDEX leads_source_raw ON leads (source_raw COLLATE NOCASE, created_at DESC);
-- Account matching.
CREATE INDEX leads_company_key ON leads (company_key, updated_at DESC) WHERE company_key IS NOT NULL;
CREATE INDEX leads_corporate_domain ON leads (corporate_domain, updated_at DESC) WHERE corporate_domain IS NOT NULL;

-- Append-only projections of Lead.events and Lead.history, rewritten with
-- the lead (same transaction), keyed by lead and position.
CREATE TABLE lead_events (
    lead       TEXT    NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    properties TEXT    NOT NULL,
    PRIMARY KEY (lead, position)
) STRICT;

CREATE TABLE stage_history (
    lead       TEXT    NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    from_stage TEXT    NOT NULL,
    to_stage   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    notes      TEXT,
    origin     TEXT    NOT NULL,
    PRIMARY KEY (lead, position)
) STRICT;

-- Links of unmerged leads to CRM records (a merged lead's links belong to
-- its survivor), kept in sync with Lead.crm_links.
CREATE TABLE crm_links (
    lead   TEXT NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    crm    TEXT NOT NULL,
    object TEXT NOT NULL,
    crm_id TEXT NOT NULL,
    UNIQUE (crm, crm_id)
) STRICT;
CREATE INDEX crm_links_lead ON crm_links (lead);

CREATE TABLE reps (
    id               TEXT    NOT NULL PRIMARY KEY,
    -- The lead_core::Rep profile as JSON.
    profile          TEXT    NOT NULL,
    open_leads       INTEGER NOT NULL DEFAULT 0,
    assigned_today   INTEGER NOT NULL DEFAULT 0,
    -- The rep's local date (YYYY-MM-DD) assigned_today counts for.
    today            TEXT,
    last_assigned_at INTEGER,
    pass             REAL    NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sales_followup_tasks (
    id          TEXT    NOT NULL PRIMARY KEY,
    lead        TEXT    NOT NULL,
    assigned_to TEXT,
    priority    TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    doc         TEXT    NOT NULL
) STRICT;
CREATE INDEX sales_followup_tasks_due ON sales_followup_tasks (status, due_at);
CREATE INDEX sales_followup_tasks_lead ON sales_followup_tasks (lead);

CREATE TABLE merge_records (
    id  TEXT NOT NULL PRIMARY KEY,
    doc TEXT NOT NULL
) STRICT;

CREATE TABLE idempotency_keys (
    key        TEXT    NOT NULL PRIMARY KEY,
    lead       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    lead         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_by    TEXT,
    lease_until  INTEGER,
    last_error   TEXT
) STRICT;
CREATE INDEX outbox_available ON outbox (available_at, seq);

CREATE TABLE dead_letters (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL,
    lead       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    parked_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sync_watermarks (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE job_leases (
    name   TEXT    NOT NULL PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT;

-- Used by the scheduled-jobs issue.
CREATE TABLE job_runs (
    id          TEXT    NOT NULL PRIMARY KEY,
    job         TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT    NOT NULL,
    detail      TEXT
) STRICT;
CREATE INDEX job_runs_job ON job_runs (job, started_at DESC);

-- Used by the manual duplicate review issue.
CREATE TABLE duplicate_review_pairs (
    a          TEXT NOT NULL,
    b          TEXT NOT NULL,
    similarity REAL NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (a, b)
) STRICT;
