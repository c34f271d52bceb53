-- Coffre records, version 3: accounts an administrator disabled (a worker who left).
-- Public by design: that an account is closed, and since when.

ALTER TABLE accounts ADD COLUMN disabled_at bigint CHECK (disabled_at >= 0);
