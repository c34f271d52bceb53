-- Coffre records, version 5: link grants counted once.
-- A link remembers the grants it counted in the last few minutes (the digest of the id the
-- visitor's page chose and when it was counted, 40 bytes each, oldest first), so that a
-- reload of the link page asking with the same id gets its grant back without a second
-- opening. Links made before keep an empty list.

ALTER TABLE links ADD COLUMN grants bytea NOT NULL DEFAULT ''::bytea
    CHECK (length(grants) % 40 = 0);
