-- Invitations to join an organisation, for people who may not have an account yet.
-- Only a SHA-256 of the invitation token is stored.
CREATE TABLE invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email_norm  text NOT NULL,
    role        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    invited_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid,
    revoked_at  timestamptz
);
-- At most one open invitation per person and organisation.
CREATE UNIQUE INDEX invitations_open ON invitations (org_id, email_norm)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
