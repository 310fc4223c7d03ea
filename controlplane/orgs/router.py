"""HTTP routes of organisations, members and billing."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from controlplane.context import OrgAccess, Principal
from controlplane.deps import AfterCommit, Conn, Info, State
from controlplane.orgs import service
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
from controlplane.rbac.dependencies import Authenticated, OrgPermission
from controlplane.tenants import service as tenants

router = APIRouter(prefix="/v1/orgs", tags=["orgs"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_org(
    principal: Annotated[Principal, Depends(Authenticated("orgs:create"))],
    body: OrgCreate,
    conn: Conn,
    info: Info,
) -> OrgOut:
    return await service.create(conn, principal=principal, body=body, info=info)


@router.get("")
async def list_orgs(
    principal: Annotated[Principal, Depends(Authenticated("orgs:list"))], conn: Conn
) -> list[OrgOut]:
    return await service.mine(conn, principal)


@router.get("/{org_id}")
async def get_org(access: Annotated[OrgAccess, Depends(OrgPermission("orgs:read"))]) -> OrgOut:
    return service.get(access)


@router.patch("/{org_id}")
async def update_org(
    access: Annotated[OrgAccess, Depends(OrgPermission("orgs:update"))],
    body: OrgUpdate,
    conn: Conn,
    info: Info,
) -> OrgOut:
    return await service.update(conn, access, body, info)


@router.delete("/{org_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_org(
    access: Annotated[OrgAccess, Depends(OrgPermission("orgs:delete"))],
    conn: Conn,
    state: State,
    info: Info,
) -> Response:
    count = await tenants.count(state.kube, access)
    await service.delete(conn, access, tenants=count, info=info)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{org_id}/billing")
async def get_billing(
    access: Annotated[OrgAccess, Depends(OrgPermission("billing:read"))],
) -> BillingOut:
    return service.billing(access)


@router.get("/{org_id}/members")
async def list_members(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:read"))], conn: Conn
) -> list[MemberOut]:
    return await service.members(conn, access)


@router.post("/{org_id}/members", status_code=status.HTTP_201_CREATED)
async def add_member(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))],
    body: MemberAdd,
    conn: Conn,
    info: Info,
) -> MemberOut:
    return await service.add_member(conn, access, body, info)


@router.patch("/{org_id}/members/{user_id}")
async def update_member(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))],
    user_id: uuid.UUID,
    body: MemberUpdate,
    conn: Conn,
    info: Info,
) -> MemberOut:
    return await service.update_member(conn, access, user_id=user_id, body=body, info=info)


@router.delete("/{org_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))],
    user_id: uuid.UUID,
    conn: Conn,
    state: State,
    info: Info,
) -> Response:
    await service.remove_member(
        conn, access, user_id=user_id, info=info, email=state.mailer is not None
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{org_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
)
async def create_invitation(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))],
    body: InvitationCreate,
    conn: Conn,
    state: State,
    info: Info,
) -> AfterCommit:
    """Invite someone by e-mail address. With SMTP configured the invitation is e-mailed
    once it is committed; the response waits for that and says how it went."""
    created = await service.invite(conn, access, body, info, email=state.mailer is not None)

    async def send() -> InvitationCreated:
        return await service.send_invitation(
            state.mailer,
            created,
            org_name=access.org.name,
            public_url=state.settings.public_url,
        )

    return AfterCommit(send, status_code=status.HTTP_201_CREATED)


@router.get("/{org_id}/invitations")
async def list_invitations(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))], conn: Conn
) -> list[InvitationOut]:
    return await service.invitations(conn, access)


@router.delete("/{org_id}/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    access: Annotated[OrgAccess, Depends(OrgPermission("members:manage"))],
    invitation_id: uuid.UUID,
    conn: Conn,
    info: Info,
) -> Response:
    await service.revoke_invitation(conn, access, invitation_id=invitation_id, info=info)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


invitations_router = APIRouter(prefix="/v1/invitations", tags=["orgs"])


@invitations_router.post("/accept")
async def accept_invitation(
    principal: Annotated[Principal, Depends(Authenticated("invitations:accept"))],
    body: InvitationAccept,
    conn: Conn,
    info: Info,
) -> OrgOut:
    return await service.accept(conn, principal=principal, body=body, info=info)
