-- The audit trail: one hash chain per organisation (chain 'org:<id>') plus 'system'
-- for events with no organisation (sign-up, login). No foreign keys: the trail
-- outlives what it describes.
CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    chain      text NOT NULL,
    seq        bigint NOT NULL,
    org_id     uuid,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    outcome    text NOT NULL,
    ip         text NOT NULL,
    user_agent text NOT NULL,
    request_id text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash  text NOT NULL,
    hash       text NOT NULL,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_events_org_at ON audit_events (org_id, at);

-- The head of each chain, locked while appending so events get gap-free sequences.
CREATE TABLE audit_heads (
    chain text PRIMARY KEY,
    seq   bigint NOT NULL,
    hash  text NOT NULL
);
