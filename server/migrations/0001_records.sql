-- Coffre records, version 1: what the sled backend keeps, as tables. Everything here is
-- public by design or ciphertext the server cannot open (see DESIGN.md "Threat model" and
-- `coffre-server audit`). Ids are the 16 random bytes of store::Id; times are unix
-- seconds; sizes are bytes. Foreign keys make a dangling share, link or session
-- impossible, whatever the order of concurrent requests.

CREATE TABLE orgs (
    id          bytea PRIMARY KEY CHECK (length(id) = 16),
    name        text NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE accounts (
    id                bytea PRIMARY KEY CHECK (length(id) = 16),
    handle            text NOT NULL UNIQUE,
    role              text NOT NULL CHECK (role IN ('worker', 'beneficiary')),
    org               bytea,
    public_key        text NOT NULL,
    -- OPAQUE registration record: useless without the server key file.
    password_file     bytea NOT NULL,
    ksf_version       integer NOT NULL,
    -- The identity sealed under the login's export key / under the recovery code.
    bundle            bytea NOT NULL,
    recovery_bundle   bytea,
    recovery_verifier bytea,
    created_by        bytea,
    consent_at        bigint,
    created_at        bigint NOT NULL,
    failed_logins     integer NOT NULL DEFAULT 0,
    locked            boolean NOT NULL DEFAULT false,
    credential_epoch  bigint NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    -- SHA-256 of the session token; the token itself is never stored.
    token_hash        bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    account           bytea NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at        bigint NOT NULL,
    expires_at        bigint NOT NULL,
    credential_epoch  bigint NOT NULL
);
CREATE INDEX sessions_account ON sessions (account);

CREATE TABLE invites (
    -- SHA-256 of the invite code.
    code_hash   bytea PRIMARY KEY CHECK (length(code_hash) = 32),
    org         bytea NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL
);

CREATE TABLE documents (
    id            bytea PRIMARY KEY CHECK (length(id) = 16),
    owner         bytea NOT NULL REFERENCES accounts (id),
    -- Name, type and category, sealed under a key from the file key.
    metadata      bytea NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    stored        bigint NOT NULL CHECK (stored >= 0 AND stored <= size),
    committed     boolean NOT NULL,
    created_at    bigint NOT NULL,
    committed_at  bigint,
    CHECK (NOT committed OR stored = size)
);
CREATE INDEX documents_owner ON documents (owner);
CREATE INDEX documents_uploads ON documents (created_at) WHERE NOT committed;

CREATE TABLE envelopes (
    doc         bytea NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    recipient   bytea NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- A single-X25519-stanza age header: the file key sealed to the recipient.
    envelope    bytea NOT NULL,
    granted_by  bytea NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint,
    PRIMARY KEY (doc, recipient)
);
CREATE INDEX envelopes_recipient ON envelopes (recipient);
CREATE INDEX envelopes_expiring ON envelopes (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE links (
    id              bytea PRIMARY KEY CHECK (length(id) = 16),
    doc             bytea NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    -- An age header to the link key, whose secret stays in the URL fragment.
    envelope        bytea NOT NULL,
    created_at      bigint NOT NULL,
    expires_at      bigint,
    max_downloads   integer,
    downloads       integer NOT NULL DEFAULT 0,
    last_opened_at  bigint
);
CREATE INDEX links_doc ON links (doc);

-- Logins between their two messages; the OPAQUE state is sealed under a key derived from
-- the server key file.
CREATE TABLE pending_logins (
    id            bytea PRIMARY KEY CHECK (length(id) = 16),
    sealed_state  bytea NOT NULL,
    account       bytea,
    epoch         bigint,
    expires_at    bigint NOT NULL
);
CREATE INDEX pending_logins_expiry ON pending_logins (expires_at);

-- Login attempts on handles that have no account (keyed by a SHA-256 of the handle).
CREATE TABLE unknown_attempts (
    key       bytea PRIMARY KEY CHECK (length(key) = 32),
    attempts  integer NOT NULL,
    last_at   bigint NOT NULL
);

-- Fixed-window counters (the per-address budget). Unlogged: losing them in a crash only
-- resets a budget, and they are the hottest writes.
CREATE UNLOGGED TABLE rate_windows (
    key      text PRIMARY KEY,
    start    bigint NOT NULL,
    seconds  bigint NOT NULL,
    count    integer NOT NULL
);

-- Who writes a document's payload right now (renewed while the request runs).
CREATE TABLE upload_leases (
    doc         bytea PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    holder      bytea NOT NULL,
    expires_at  bigint NOT NULL
);
