"""Rules of organisations and membership.

Nobody grants more than they hold (an admin cannot make an owner or hand out a custom
role with permissions the admin lacks), and an organisation always keeps an owner.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from controlplane.audit import service as audit
from controlplane.context import OrgAccess, Principal, RequestInfo
from controlplane.errors import Conflict, Forbidden, InvalidInput, NotFound
from controlplane.mail import Mailer, MailError
from controlplane.notifications import service as notifications
from controlplane.notifications.service import OrgEvent
from controlplane.orgs import invitation_email, plans, repository
from controlplane.orgs.repository import OrgRow
from controlplane.orgs.schemas import (
    BillingOut,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MemberAdd,
    MemberOut,
    MemberUpdate,
    OrgCreate,
    OrgOut,
    OrgUpdate,
)
from controlplane.rbac import permissions
from controlplane.rbac import repository as roles
from controlplane.users import repository as users
from controlplane.webhooks.schemas import EventType

log = logging.getLogger("tenantry.controlplane.invitations")


def _out(org: OrgRow, role: str) -> OrgOut:
    return OrgOut(
        id=org.id,
        slug=org.slug,
        name=org.name,
        plan=org.plan,
        role=role,
        created_at=org.created_at,
    )


async def create(
    conn: asyncpg.Connection, *, principal: Principal, body: OrgCreate, info: RequestInfo
) -> OrgOut:
    org = await repository.insert(conn, slug=body.slug, name=body.name, plan="starter")
    if org is None:
        raise Conflict(f"organisation slug {body.slug!r} is taken")
    await repository.add_member(conn, org_id=org.id, user_id=principal.user_id, role="owner")
    await audit.record(
        conn,
        org_id=org.id,
        actor=str(principal.user_id),
        action="org.create",
        target=f"org/{org.slug}",
        info=info,
    )
    return _out(org, "owner")


async def mine(conn: asyncpg.Connection, principal: Principal) -> list[OrgOut]:
    return [_out(org, role) for org, role in await repository.of_user(conn, principal.user_id)]


def get(access: OrgAccess) -> OrgOut:
    return _out(access.org, access.role)


async def update(
    conn: asyncpg.Connection, access: OrgAccess, body: OrgUpdate, info: RequestInfo
) -> OrgOut:
    await repository.update_name(conn, access.org.id, body.name)
    await audit.record_as(
        conn, access, action="org.update", target=f"org/{access.org.slug}", info=info
    )
    found = await repository.membership(conn, access.org.id, access.principal.user_id)
    assert found is not None
    return _out(*found)


async def delete(
    conn: asyncpg.Connection, access: OrgAccess, *, tenants: int, info: RequestInfo
) -> None:
    if tenants:
        raise Conflict(f"the organisation still has {tenants} tenant(s); delete them first")
    await audit.record_as(
        conn, access, action="org.delete", target=f"org/{access.org.slug}", info=info
    )
    await repository.delete(conn, access.org.id)


def billing(access: OrgAccess) -> BillingOut:
    lim = plans.limits(access.org.plan)
    return BillingOut(
        plan=access.org.plan,
        max_tenants=lim.max_tenants,
        max_dashboards=lim.max_dashboards,
        max_shards=lim.max_shards,
        tenant_plans=sorted(lim.tenant_plans),
    )


async def members(conn: asyncpg.Connection, access: OrgAccess) -> list[MemberOut]:
    return [
        MemberOut(
            user_id=m.user_id, email=m.email, name=m.name, role=m.role, created_at=m.created_at
        )
        for m in await repository.members(conn, access.org.id)
    ]


async def _grants_of(conn: asyncpg.Connection, org_id: uuid.UUID, role: str) -> permissions.Grants:
    if role in permissions.BUILTIN_ROLES:
        return permissions.role_grants(role, {})
    row = await roles.custom_role(conn, org_id, role)
    if row is None:
        raise InvalidInput(f"role {role!r} does not exist in this organisation")
    return permissions.Grants.of(row.permissions)


async def _may_grant(conn: asyncpg.Connection, access: OrgAccess, role: str) -> None:
    wanted = await _grants_of(conn, access.org.id, role)
    if not access.grants.includes(wanted):
        raise Forbidden(f"you cannot grant role {role!r}: it holds permissions you lack")


async def _keep_an_owner(conn: asyncpg.Connection, org_id: uuid.UUID, current: str) -> None:
    if current == "owner" and await repository.count_role(conn, org_id, "owner") <= 1:
        raise Conflict("an organisation must keep at least one owner")


async def add_member(
    conn: asyncpg.Connection, access: OrgAccess, body: MemberAdd, info: RequestInfo
) -> MemberOut:
    await _may_grant(conn, access, body.role)
    user = await users.by_email(conn, body.email)
    if user is None:
        raise NotFound("no account with this e-mail; ask them to sign up first")
    if not await repository.add_member(conn, org_id=access.org.id, user_id=user.id, role=body.role):
        raise Conflict("already a member")
    await audit.record_as(
        conn,
        access,
        action="member.add",
        target=f"user/{user.id}",
        info=info,
        detail={"role": body.role},
    )
    m = await repository.member(conn, access.org.id, user.id)
    assert m is not None
    return MemberOut(
        user_id=m.user_id, email=m.email, name=m.name, role=m.role, created_at=m.created_at
    )


async def _target(conn: asyncpg.Connection, access: OrgAccess, user_id: uuid.UUID) -> str:
    m = await repository.member(conn, access.org.id, user_id)
    if m is None:
        raise NotFound("member not found")
    await _may_grant(conn, access, m.role)  # you cannot touch someone above you
    return m.role


async def update_member(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    user_id: uuid.UUID,
    body: MemberUpdate,
    info: RequestInfo,
) -> MemberOut:
    current = await _target(conn, access, user_id)
    await _may_grant(conn, access, body.role)
    if body.role != "owner":
        await _keep_an_owner(conn, access.org.id, current)
    await repository.set_role(conn, org_id=access.org.id, user_id=user_id, role=body.role)
    await audit.record_as(
        conn,
        access,
        action="member.update",
        target=f"user/{user_id}",
        info=info,
        detail={"role": body.role},
    )
    m = await repository.member(conn, access.org.id, user_id)
    assert m is not None
    return MemberOut(
        user_id=m.user_id, email=m.email, name=m.name, role=m.role, created_at=m.created_at
    )


async def remove_member(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    user_id: uuid.UUID,
    info: RequestInfo,
    email: bool = False,
) -> None:
    """Remove a member (never the last owner); the organisation is told (a notice, its
    webhooks, and with ``email`` its owners)."""
    current = await _target(conn, access, user_id)
    await _keep_an_owner(conn, access.org.id, current)
    await repository.remove_member(conn, access.org.id, user_id)
    await audit.record_as(conn, access, action="member.remove", target=f"user/{user_id}", info=info)
    event = OrgEvent(
        type=EventType.MEMBER_REMOVED,
        name="MemberRemoved",
        summary=f"A member ({current}) was removed from {access.org.name}",
        data={"user_id": str(user_id), "role": current},
    )
    await notifications.org_event(conn, org_id=access.org.id, event=event, email=email)


def _invitation_out(row: repository.InvitationRow) -> InvitationOut:
    return InvitationOut(
        id=row.id,
        email=row.email,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def invite(
    conn: asyncpg.Connection,
    access: OrgAccess,
    body: InvitationCreate,
    info: RequestInfo,
    *,
    email: bool = False,
) -> InvitationCreated:
    """An invitation for someone who may not have an account yet; the token is shown
    once (``send_invitation`` e-mails it, after the commit). The organisation is told
    (a notice, its webhooks, and with ``email`` its owners), never with the token."""
    await _may_grant(conn, access, body.role)
    token = secrets.token_urlsafe(32)
    row = await repository.insert_invitation(
        conn,
        org_id=access.org.id,
        email=body.email,
        role=body.role,
        token_hash=hashlib.sha256(token.encode()).digest(),
        invited_by=access.principal.user_id,
        expires_at=datetime.now(UTC) + timedelta(days=body.expires_in_days),
    )
    if row is None:
        raise Conflict("an open invitation for this e-mail already exists")
    await audit.record_as(
        conn,
        access,
        action="invitation.create",
        target=f"invitation/{row.id}",
        info=info,
        detail={"role": body.role},
    )
    event = OrgEvent(  # the invitee's address goes to the org's own endpoints, not the token
        type=EventType.MEMBER_INVITED,
        name="MemberInvited",
        summary=f"{row.email} was invited to {access.org.name} as {row.role}",
        data={
            "invitation_id": str(row.id),
            "email": row.email,
            "role": row.role,
            "expires_at": row.expires_at.isoformat(),
        },
    )
    await notifications.org_event(conn, org_id=access.org.id, event=event, email=email)
    return InvitationCreated(**_invitation_out(row).model_dump(), token=token)


async def send_invitation(
    mailer: Mailer | None,
    created: InvitationCreated,
    *,
    org_name: str,
    public_url: str | None,
) -> InvitationCreated:
    """E-mail a committed invitation to the invitee; ``created`` with the outcome.

    Call it after the commit only: an e-mail must never announce an invitation that was
    rolled back, nor hold a transaction open while a mail server answers. A failure
    leaves the invitation valid (the response still carries the token) and is logged
    with the invitation id and the kind of failure, never the token or the address.
    """
    if mailer is None or not public_url:
        return created.model_copy(update={"email_sent": False, "email_delivery": "not_configured"})
    message = invitation_email.message(
        to=created.email,
        org_name=org_name,
        role=created.role,
        expires_at=created.expires_at,
        public_url=public_url,
        token=created.token,
    )
    try:
        await mailer.send(message, to=created.email)
    except MailError as exc:
        log.warning(
            "invitation e-mail not sent",
            extra={"invitation_id": str(created.id), "mail_error": str(exc)},
        )
        return created.model_copy(update={"email_sent": False, "email_delivery": "failed"})
    log.info("invitation e-mail sent", extra={"invitation_id": str(created.id)})
    return created.model_copy(update={"email_sent": True, "email_delivery": "sent"})


async def invitations(conn: asyncpg.Connection, access: OrgAccess) -> list[InvitationOut]:
    return [_invitation_out(r) for r in await repository.open_invitations(conn, access.org.id)]


async def revoke_invitation(
    conn: asyncpg.Connection, access: OrgAccess, *, invitation_id: uuid.UUID, info: RequestInfo
) -> None:
    if not await repository.revoke_invitation(conn, access.org.id, invitation_id):
        raise NotFound("invitation not found")
    await audit.record_as(
        conn, access, action="invitation.revoke", target=f"invitation/{invitation_id}", info=info
    )


async def accept(
    conn: asyncpg.Connection, *, principal: Principal, body: InvitationAccept, info: RequestInfo
) -> OrgOut:
    """Join the organisation of an invitation addressed to the signed-in user's e-mail.
    Any mismatch (token, e-mail, expiry, already used) is the same 404."""
    user = await users.by_id(conn, principal.user_id)
    row = None
    if user is not None:
        row = await repository.claim_invitation(
            conn,
            token_hash=hashlib.sha256(body.token.encode()).digest(),
            email=user.email,
            user_id=user.id,
        )
    if row is None:
        raise NotFound("invitation not found, expired or already used")
    if row.role not in permissions.BUILTIN_ROLES and (
        await roles.custom_role(conn, row.org_id, row.role) is None
    ):
        raise Conflict(f"role {row.role!r} no longer exists; ask for a new invitation")
    if not await repository.add_member(
        conn, org_id=row.org_id, user_id=principal.user_id, role=row.role
    ):
        raise Conflict("already a member")
    await audit.record(
        conn,
        org_id=row.org_id,
        actor=str(principal.user_id),
        action="invitation.accept",
        target=f"invitation/{row.id}",
        info=info,
        detail={"role": row.role},
    )
    found = await repository.membership(conn, row.org_id, principal.user_id)
    assert found is not None
    return _out(*found)
