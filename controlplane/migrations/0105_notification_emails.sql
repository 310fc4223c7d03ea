-- E-mails of an organisation's notifications to its owners: an outbox like
-- webhook_deliveries (0104). Rows are queued in the transaction that records the
-- notification (only when the control plane has an SMTP server), claimed by the
-- delivery worker with FOR UPDATE SKIP LOCKED and a lease, retried on the webhook
-- retry schedule.
CREATE TABLE notification_emails (
    id              bigserial PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    tries           int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notification_emails_due ON notification_emails (next_attempt_at) WHERE state = 'pending';
