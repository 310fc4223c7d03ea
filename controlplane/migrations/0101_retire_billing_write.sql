-- PUT /v1/orgs/{id}/billing (permission billing:write) is retired: plans change through
-- subscriptions (billing:manage). Custom roles that granted billing:write keep the same
-- power under its new name.
UPDATE org_roles
SET permissions = ARRAY(
    SELECT DISTINCT p
    FROM unnest(array_replace(permissions, 'billing:write', 'billing:manage')) AS p
    ORDER BY p
)
WHERE 'billing:write' = ANY (permissions);
