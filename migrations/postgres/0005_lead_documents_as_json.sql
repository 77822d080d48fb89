-- The store reads and writes a lead's document whole and never looks
-- inside it in SQL (the columns beside it carry everything queried), so
-- JSONB's parsing into a tree, sorting of keys and printing back on every
-- read was work for nothing: `json` keeps the text as written (still
-- validated, still usable with `->`/`->>` for ad hoc queries). Measured
-- in docs/perf.md ("HTTP captures").
ALTER TABLE leads ALTER COLUMN doc TYPE json USING doc::json;
DO $$
BEGIN
    ALTER TABLE leads ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'LZ4 is not available on this server; lead documents keep pglz';
END
$$;
