-- Lead documents are about 2 KB of JSON, just over the TOAST threshold, so
-- every lead write compresses one. LZ4 does that several times faster than
-- the default pglz at a similar ratio for JSON. Servers built without LZ4
-- keep pglz: the column still works, only slower to write.
DO $$
BEGIN
    ALTER TABLE leads ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'LZ4 is not available on this server; lead documents keep pglz';
END
$$;
