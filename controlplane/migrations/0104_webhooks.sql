-- Organisation webhooks and their durable outbox (controlplane/webhooks/).
-- A notification of an organisation enqueues one row of webhook_deliveries per
-- matching, enabled webhook in the transaction that records the notification, so a
-- notification and its deliveries are committed together or not at all. Delivery
-- workers (every control-plane process runs one) claim due rows with
-- SELECT ... FOR UPDATE SKIP LOCKED and lease them (lease_until): a process that dies
-- mid-delivery leaves a row that another claims once the lease has passed.
CREATE TABLE webhooks (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url          text NOT NULL,
    event_types  text[] NOT NULL DEFAULT '{}',  -- empty: every event type
    secret       text NOT NULL,  -- whsec_..., sealed with SIGNING_KEY_SECRET when set
    enabled      boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at timestamptz
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    msg_id          text NOT NULL UNIQUE,  -- the webhook-id header, the same on every retry
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    body            text NOT NULL,  -- the exact JSON sent (and signed)
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    tries           int NOT NULL DEFAULT 0,  -- attempts of the current round (redelivery resets)
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id DESC);

CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    duration_ms  int NOT NULL,
    status_code  int,  -- null: no HTTP answer (refused, timeout, target refused)
    error        text,  -- the kind of failure, never a secret
    response_excerpt text NOT NULL DEFAULT ''  -- at most the first 256 characters
);
CREATE INDEX webhook_attempts_of ON webhook_attempts (delivery_id, id);
