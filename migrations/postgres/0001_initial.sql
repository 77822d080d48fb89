-- The production store's schema (lead-store-postgres), shared by every
-- server instance.
--
-- Mirrors migrations/sqlite/0001_initial.sql table for table and column for
-- column. Conventions: timestamps are BIGINT microseconds since the Unix
-- epoch (UTC), exactly the precision of the SQLite store and of list
-- cursors; documents are JSONB; ids and names that are ordered or compared
-- use COLLATE "C" (byte order, the order Rust compares strings in),
-- whatever the database's default collation. `leads.doc` holds the complete
-- lead and is what reads return; every other column of `leads` is a
-- projection of it that SQL filters, orders or aggregates on.

CREATE TABLE leads (
    ext_id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    email            TEXT    NOT NULL,
    -- lead_core::email_match_key(email): what uniqueness is decided on.
    email_key        TEXT COLLATE "C" NOT NULL,
    -- lead_core::MatchKeys company_key() / corporate_domain(): account matching.
    company_key      TEXT COLLATE "C",
    corporate_domain TEXT COLLATE "C",
    stage            TEXT    NOT NULL,
    priority         TEXT    NOT NULL,
    score            INTEGER NOT NULL,
    assigned_to      TEXT COLLATE "C",
    -- Source lower-cased by Rust (Unicode), as the dashboard groups it.
    source           TEXT COLLATE "C",
    -- Source as written; the list filter compares it ASCII-case-insensitively
    -- (translate() folds A-Z only, like `eq_ignore_ascii_case`).
    source_raw       TEXT COLLATE "C",
    -- The lower-cased e-mail, first name, last name and company, lower-cased
    -- by Rust so the text filter means exactly `LeadQuery::matches`.
    search_text      TEXT[]  NOT NULL,
    -- Segment names.
    segments         TEXT[]  NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    merged_into      TEXT COLLATE "C",
    version          BIGINT  NOT NULL,
    doc              JSONB   NOT NULL
);

-- Two unmerged leads never share a folded e-mail.
CREATE UNIQUE INDEX leads_email_key_unmerged ON leads (email_key) WHERE merged_into IS NULL;
-- Listing order and cursor paging.
CREATE INDEX leads_created ON leads (created_at DESC, ext_id DESC);
-- List filters.
CREATE INDEX leads_stage ON leads (stage, created_at DESC);
CREATE INDEX leads_priority ON leads (priority, created_at DESC);
CREATE INDEX leads_assigned_to ON leads (assigned_to, created_at DESC);
CREATE INDEX leads_source_raw ON leads
    (translate(source_raw, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), created_at DESC);
CREATE INDEX leads_segments ON leads USING GIN (segments);
-- Account matching.
CREATE INDEX leads_company_key ON leads (company_key, updated_at DESC) WHERE company_key IS NOT NULL;
CREATE INDEX leads_corporate_domain ON leads (corporate_domain, updated_at DESC) WHERE corporate_domain IS NOT NULL;

-- Projections of Lead.events and Lead.history, rewritten with the lead (same
-- transaction), keyed by lead and position.
CREATE TABLE lead_events (
    lead       TEXT COLLATE "C" NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    properties JSONB   NOT NULL,
    PRIMARY KEY (lead, position)
);

CREATE TABLE stage_history (
    lead       TEXT COLLATE "C" NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    from_stage TEXT    NOT NULL,
    to_stage   TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    notes      TEXT,
    origin     TEXT    NOT NULL,
    PRIMARY KEY (lead, position)
);

-- Links of unmerged leads to CRM records (a merged lead's links belong to
-- its survivor), kept in sync with Lead.crm_links.
CREATE TABLE crm_links (
    lead   TEXT COLLATE "C" NOT NULL REFERENCES leads (ext_id) ON DELETE CASCADE,
    crm    TEXT NOT NULL,
    object TEXT NOT NULL,
    crm_id TEXT NOT NULL,
    UNIQUE (crm, crm_id)
);
CREATE INDEX crm_links_lead ON crm_links (lead);

CREATE TABLE reps (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- The lead_core::Rep profile.
    profile          JSONB   NOT NULL,
    open_leads       BIGINT  NOT NULL DEFAULT 0,
    assigned_today   BIGINT  NOT NULL DEFAULT 0,
    -- The rep's local date assigned_today counts for.
    today            DATE,
    last_assigned_at BIGINT,
    pass             DOUBLE PRECISION NOT NULL DEFAULT 0
);

CREATE TABLE sales_followup_tasks (
    id          UUID    NOT NULL PRIMARY KEY,
    lead        TEXT COLLATE "C" NOT NULL,
    assigned_to TEXT COLLATE "C",
    priority    TEXT    NOT NULL,
    due_at      BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    doc         JSONB   NOT NULL
);
CREATE INDEX sales_followup_tasks_due ON sales_followup_tasks (status, due_at);
CREATE INDEX sales_followup_tasks_lead ON sales_followup_tasks (lead);

CREATE TABLE merge_records (
    id  UUID  NOT NULL PRIMARY KEY,
    doc JSONB NOT NULL
);

CREATE TABLE idempotency_keys (
    key        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    lead       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- The CRM push queue. Workers of every instance claim rows with
-- `FOR UPDATE SKIP LOCKED`, so concurrent claims get disjoint batches.
CREATE TABLE outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           UUID    NOT NULL UNIQUE,
    lead         TEXT COLLATE "C" NOT NULL,
    kind         TEXT    NOT NULL,
    payload      JSONB   NOT NULL,
    created_at   BIGINT  NOT NULL,
    available_at BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_by    TEXT,
    lease_until  BIGINT,
    last_error   TEXT
);
CREATE INDEX outbox_available ON outbox (available_at, seq);

CREATE TABLE dead_letters (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         UUID    NOT NULL,
    lead       TEXT COLLATE "C" NOT NULL,
    kind       TEXT    NOT NULL,
    payload    JSONB   NOT NULL,
    created_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    parked_at  BIGINT  NOT NULL
);

CREATE TABLE sync_watermarks (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE job_leases (
    name   TEXT   NOT NULL PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);

-- Used by the scheduled-jobs issue.
CREATE TABLE job_runs (
    id          UUID   NOT NULL PRIMARY KEY,
    job         TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    status      TEXT   NOT NULL,
    detail      TEXT
);
CREATE INDEX job_runs_job ON job_runs (job, started_at DESC);

-- Used by the manual duplicate review issue.
CREATE TABLE duplicate_review_pairs (
    a          TEXT COLLATE "C" NOT NULL,
    b          TEXT COLLATE "C" NOT NULL,
    similarity DOUBLE PRECISION NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (a, b)
);
