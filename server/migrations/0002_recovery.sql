-- Coffre records, version 2: recovery through referents (server/src/store/recovery.rs).
-- As in version 1, everything here is public by design or ciphertext the server cannot
-- open. A deal and a request are stored whole as `body` (the serde JSON of the record,
-- the same as the sled backend keeps), next to the few columns that queries, locks and
-- constraints need; the columns are written from the same record in the same statement as
-- `body`, and reads decode `body` only.

-- An organisation's delay before a recovery through referents completes (seconds; NULL:
-- the default). Public: a setting of the structure.
ALTER TABLE orgs ADD COLUMN recovery_delay_seconds bigint
    CHECK (recovery_delay_seconds >= 0);

-- One deal per account: what the person's browser dealt. In `body`, in clear: the deal id,
-- the account, the threshold, each referent's account id and share index, the creation
-- time (who the referents are is public by design, like who shares with whom). Sealed:
-- each share is an age file to its referent's X25519 key; the identity is sealed
-- (ChaCha20-Poly1305) under the recovery secret, which only k shares rebuild; the
-- commitments and the verifier are SHA-256 digests. The server holds no share in clear
-- and cannot rebuild the secret.
CREATE TABLE recovery_deals (
    account  bytea PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- Changes at every deal; a request names the deal it was made under.
    id       bytea NOT NULL CHECK (length(id) = 16),
    body     jsonb NOT NULL
);

-- Recovery requests, open or closed (closed ones are kept a while, then swept). In `body`,
-- in clear: the state, times, approvals needed, the referents, who approved or refused,
-- the asking device's ephemeral public key. Sealed: each approval's share, resealed by the
-- referent as an age file to that ephemeral key, whose secret never leaves the asking
-- device; the challenge is kept as a SHA-256 digest only.
CREATE TABLE recovery_requests (
    id            bytea PRIMARY KEY CHECK (length(id) = 16),
    -- SHA-256 of the handle asked for (one open request per handle): a handle without an
    -- account is stored the same way, with no account.
    handle_key    bytea NOT NULL CHECK (length(handle_key) = 32),
    account       bytea REFERENCES accounts (id) ON DELETE CASCADE,
    state         text NOT NULL CHECK (state IN ('open', 'cancelled', 'refused', 'finished')),
    created_at    bigint NOT NULL,
    -- An open request is closed from then on (it stays 'open' here: expiry is by time).
    expires_at    bigint NOT NULL,
    -- When the sweeper may remove it (RecoveryRequest::removable_after, at every write).
    removable_at  bigint NOT NULL,
    -- The deal's referents (account ids), for a referent's list of requests.
    referents     bytea[] NOT NULL,
    body          jsonb NOT NULL
);
-- The one-open-request-per-handle check; not unique: an expired request stays 'open'.
CREATE INDEX recovery_requests_handle ON recovery_requests (handle_key) WHERE state = 'open';
CREATE INDEX recovery_requests_account ON recovery_requests (account, created_at);
CREATE INDEX recovery_requests_referents ON recovery_requests USING gin (referents)
    WHERE state = 'open';
CREATE INDEX recovery_requests_removable ON recovery_requests (removable_at);
