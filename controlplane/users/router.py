"""HTTP routes of the users domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from controlplane.context import Principal
from controlplane.deps import Conn, Info
from controlplane.rbac.dependencies import Authenticated
from controlplane.users import service
from controlplane.users.schemas import UserOut, UserUpdate

router = APIRouter(prefix="/v1/users", tags=["users"])

SelfRead = Annotated[Principal, Depends(Authenticated("users:self"))]


@router.get("/me")
async def get_me(principal: SelfRead, conn: Conn) -> UserOut:
    return await service.me(conn, principal.user_id)


@router.patch("/me")
async def patch_me(principal: SelfRead, conn: Conn, body: UserUpdate, info: Info) -> UserOut:
    return await service.update_me(conn, user_id=principal.user_id, change=body, info=info)
