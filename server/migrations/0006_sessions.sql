-- Coffre records, version 6: what the sessions list shows. A session's last use (moved
-- forward at most once a minute), a coarse device label derived from the User-Agent at
-- login (the User-Agent itself is not kept), and whether it was opened in "shared
-- computer" mode. Sessions from before get their creation time as last use.

ALTER TABLE sessions
    ADD COLUMN last_used_at bigint NOT NULL DEFAULT 0 CHECK (last_used_at >= 0),
    ADD COLUMN device text NOT NULL DEFAULT '' CHECK (length(device) <= 64),
    ADD COLUMN shared boolean NOT NULL DEFAULT false;
UPDATE sessions SET last_used_at = created_at;
