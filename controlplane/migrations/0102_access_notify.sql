-- Announce every change to who may do what in an organisation, so that processes
-- caching members' access (controlplane/rbac/access_cache.py) forget it. NOTIFY is
-- delivered when the transaction commits; the payload is the organisation's id.
CREATE FUNCTION tenantry_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'orgs' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('tenantry_access', OLD.id::text);
        ELSE
            PERFORM pg_notify('tenantry_access', NEW.id::text);
        END IF;
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('tenantry_access', OLD.org_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('tenantry_access', NEW.org_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER orgs_access_changed AFTER UPDATE OR DELETE ON orgs
    FOR EACH ROW EXECUTE FUNCTION tenantry_access_changed();
CREATE TRIGGER memberships_access_changed AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION tenantry_access_changed();
CREATE TRIGGER org_roles_access_changed AFTER INSERT OR UPDATE OR DELETE ON org_roles
    FOR EACH ROW EXECUTE FUNCTION tenantry_access_changed();
