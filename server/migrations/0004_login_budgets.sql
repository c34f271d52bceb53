-- Coffre records, version 4: login budgets instead of locks.
-- A handle's budget (devices without a device credential) is keyed by a digest of the
-- handle whether or not an account has it; a device credential keeps its own budget.
-- Accounts no longer lock: their count and lock columns go, and the counters of unknown
-- handles become handle budgets (fresh ones: the old counts meant something else).

ALTER TABLE accounts DROP COLUMN failed_logins, DROP COLUMN locked;
DROP TABLE unknown_attempts;

CREATE TABLE login_budgets (
    key           bytea PRIMARY KEY CHECK (length(key) = 32),
    failures      integer NOT NULL CHECK (failures >= 0),
    window_start  bigint NOT NULL CHECK (window_start >= 0),
    window_count  integer NOT NULL CHECK (window_count >= 0),
    next_at       bigint NOT NULL CHECK (next_at >= 0),
    idle_at       bigint NOT NULL CHECK (idle_at >= 0)
);
CREATE INDEX login_budgets_idle ON login_budgets (idle_at);

CREATE TABLE devices (
    key           bytea PRIMARY KEY CHECK (length(key) = 32),
    account       bytea NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at    bigint NOT NULL CHECK (created_at >= 0),
    last_used_at  bigint NOT NULL CHECK (last_used_at >= 0),
    failures      integer NOT NULL CHECK (failures >= 0),
    window_start  bigint NOT NULL CHECK (window_start >= 0),
    window_count  integer NOT NULL CHECK (window_count >= 0),
    next_at       bigint NOT NULL CHECK (next_at >= 0),
    idle_at       bigint NOT NULL CHECK (idle_at >= 0)
);
CREATE INDEX devices_account ON devices (account, last_used_at);
CREATE INDEX devices_last_use ON devices (last_used_at);

-- A login between its two messages remembers the budget it was counted on, so that a
-- success gives the attempt back there. Pending logins live two minutes: those of the
-- old form are dropped (their clients start again).
DELETE FROM pending_logins;
ALTER TABLE pending_logins
    ADD COLUMN budget_device    boolean NOT NULL,
    ADD COLUMN budget_key       bytea NOT NULL CHECK (length(budget_key) = 32),
    ADD COLUMN started_at       bigint NOT NULL CHECK (started_at >= 0),
    ADD COLUMN remember_device  boolean NOT NULL;
