-- Duplicate pairs kept for a person to decide (lead-core `ReviewPair`):
-- one row per two leads (`lead_a` < `lead_b`), listed by status in id
-- order (UUID v7: the order they were found).
CREATE TABLE review_pairs (
    id          UUID    PRIMARY KEY,
    lead_a      TEXT COLLATE "C" NOT NULL,
    lead_b      TEXT COLLATE "C" NOT NULL,
    similarity  DOUBLE PRECISION,
    status      TEXT    NOT NULL CHECK (status IN ('open', 'merged', 'dismissed')),
    merge_id    UUID,
    found_at    BIGINT  NOT NULL,
    decided_at  BIGINT,
    UNIQUE (lead_a, lead_b)
);
CREATE INDEX review_pairs_status ON review_pairs (status, id);
-- Pairs of one lead (the unique index covers `lead_a`).
CREATE INDEX review_pairs_lead_b ON review_pairs (lead_b);
