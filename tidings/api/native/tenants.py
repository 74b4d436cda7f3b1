"""``/tenants/…``: the caller's tenant — roles, members and invitations, branding, settings,
wallet, tags, onboarding checklist and WhatsApp account info."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from tidings.api.deps import Reader
from tidings.api.schemas import ErrorBody
from tidings.domain.roles import ROLE_DESCRIPTIONS, ROLE_PERMISSIONS, Role

router = APIRouter(prefix="/tenants", tags=["tenants"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class RoleBody(BaseModel):
    role: Role
    description: str
    permissions: list[str]


@router.get("/roles/", response_model=list[RoleBody], summary="The roles and what each may do")
async def list_roles(_caller: Reader) -> list[RoleBody]:
    return [RoleBody(role=role, description=ROLE_DESCRIPTIONS[role],
                     permissions=sorted(p.value for p in ROLE_PERMISSIONS[role]))
            for role in Role]
