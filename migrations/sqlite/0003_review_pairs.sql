-- Duplicate pairs kept for a person to decide (lead-core `ReviewPair`):
-- one row per two leads (`lead_a` < `lead_b`), listed by status in id
-- order (UUID v7 text: the order they were found).
CREATE TABLE review_pairs (
    id          TEXT    NOT NULL PRIMARY KEY,
    lead_a      TEXT    NOT NULL,
    lead_b      TEXT    NOT NULL,
    similarity  REAL,
    status      TEXT    NOT NULL CHECK (status IN ('open', 'merged', 'dismissed')),
    merge_id    TEXT,
    found_at    INTEGER NOT NULL,
    decided_at  INTEGER,
    UNIQUE (lead_a, lead_b)
) STRICT;
CREATE INDEX review_pairs_status ON review_pairs (status, id);
-- Pairs of one lead (the unique index covers `lead_a`).
CREATE INDEX review_pairs_lead_b ON review_pairs (lead_b);
