-- The hash of the request that first used an idempotency key (SHA-256
-- hex), so a key brought back with another payload is refused instead of
-- replayed. Keys stored before this column have none and replay as before.
ALTER TABLE idempotency_keys ADD COLUMN request_hash TEXT;
