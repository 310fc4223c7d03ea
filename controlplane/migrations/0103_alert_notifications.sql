-- Alerts about a tenant (from Prometheus through Alertmanager's webhook,
-- POST /internal/v1/alerts), kept as notifications of the tenant's organisation. The
-- organisation is the one the Tenant resource is labelled with, never one the alert
-- names. One row per alert occurrence (Alertmanager's fingerprint and start): a later
-- webhook of the same occurrence updates its status (firing, then resolved).
CREATE TABLE alert_notifications (
    id          bigserial PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    tenant      text NOT NULL,
    alertname   text NOT NULL,
    severity    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('firing', 'resolved')),
    summary     text NOT NULL,
    description text NOT NULL,
    fingerprint text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, fingerprint, starts_at)
);
CREATE INDEX alert_notifications_org ON alert_notifications (org_id, updated_at DESC, id DESC);
