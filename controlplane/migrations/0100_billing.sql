-- Billing: subscriptions with their plan history, metered usage, invoices.

-- One subscription per organisation; the plan history is in billing_plan_segments.
CREATE TABLE billing_subscriptions (
    org_id     uuid PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    currency   text NOT NULL,
    started_at timestamptz NOT NULL,
    cancel_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A plan in effect over [valid_from, valid_to); valid_to NULL while it still is.
CREATE TABLE billing_plan_segments (
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    plan       text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    PRIMARY KEY (org_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX billing_plan_segments_one_open ON billing_plan_segments (org_id)
    WHERE valid_to IS NULL;

-- Usage events. The primary key is the idempotency guarantee: a key is counted once
-- per organisation, however often it is submitted. No foreign key on purpose: the
-- referential check would cost a lookup and a row lock per event on the hot path;
-- the service checks the organisation once per batch.
CREATE TABLE usage_events (
    org_id          uuid NOT NULL,
    idempotency_key text NOT NULL,
    metric          text NOT NULL,
    tenant          text NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity >= 0),
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, idempotency_key)
);
CREATE INDEX usage_events_period ON usage_events (org_id, occurred_at);

-- One invoice per organisation and period. Lines are a JSON snapshot, so later price
-- changes never alter an issued invoice. No foreign key: invoices outlive orgs.
CREATE TABLE billing_invoices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft', 'finalized')),
    number       text UNIQUE,
    currency     text NOT NULL,
    total        bigint NOT NULL CHECK (total >= 0),
    lines        jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    UNIQUE (org_id, period_start),
    CHECK ((status = 'finalized') = (finalized_at IS NOT NULL AND number IS NOT NULL))
);

-- A finalized invoice is immutable: enforced by the database, not only by the code.
CREATE FUNCTION billing_invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'finalized' THEN
        RAISE EXCEPTION 'invoice % is finalized and immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_invoices_immutable BEFORE UPDATE OR DELETE ON billing_invoices
    FOR EACH ROW EXECUTE FUNCTION billing_invoices_immutable();
