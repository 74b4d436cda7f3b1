"""``/tenants/users/…`` and ``/tenants/members/…``: the tenant's members, invitations and their
acceptance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, Reader, RuntimeDep, requires
from tidings.api.pagination import Pagination
from tidings.api.schemas import ErrorBody, Page, RequestBody
from tidings.domain.roles import Permission, Role
from tidings.services import members
from tidings.services.auth import Principal

router = APIRouter(prefix="/tenants", tags=["tenants"],
                   responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                              403: {"model": ErrorBody}})

MembersManager = Annotated[Principal, Depends(requires(Permission.MEMBERS_MANAGE))]


class MemberBody(BaseModel):
    id: str = Field(description="The user's id (used by PATCH and DELETE /tenants/users/{id}/).")
    email: str
    name: str | None
    role: Role
    status: Literal["active", "pending"]
    joined_at: datetime | None = Field(description="When the invitation was accepted; null "
                                                   "while pending.")


def _member_body(member: members.Member) -> MemberBody:
    return MemberBody(id=member.user_id, email=member.email, name=member.name, role=member.role,
                      status="active" if member.status == "active" else "pending",
                      joined_at=member.joined_at)


@router.get("/users/", response_model=Page[MemberBody],
            summary="The tenant's members, active and invited")
async def list_users(caller: Reader, session: DbSession,
                     page: Pagination) -> Page[MemberBody]:
    found, total = await members.list_members(session, caller.tenant_id, limit=page.limit,
                                              offset=page.offset)
    return page.page([_member_body(m) for m in found], total)


class InviteRequest(RequestBody):
    email: str = Field(max_length=320)
    role: Role


class InvitationBody(BaseModel):
    id: str = Field(description="The membership's id.")
    user_id: str
    email: str
    role: Role
    status: Literal["pending"]
    invite_token: str = Field(description="Shown once: pass it to the invitee, who accepts "
                                          "with POST /tenants/members/accept/. No email is sent.")
    expires_at: datetime


@router.post("/members/invite/", response_model=InvitationBody, status_code=201,
             summary="Invite a teammate by email (members.manage; only owners invite owners)",
             responses={409: {"model": ErrorBody}})
async def invite(body: InviteRequest, caller: MembersManager, session: DbSession,
                 runtime: RuntimeDep) -> InvitationBody:
    invitation = await members.invite_member(
        session, tenant_id=caller.tenant_id, inviter_role=caller.role,
        invited_by=caller.user_id or caller.api_key_id, email=body.email, role=body.role,
        ttl=timedelta(seconds=runtime.settings.invite_ttl_seconds), now=runtime.clock())
    member = invitation.member
    return InvitationBody(id=member.membership_id, user_id=member.user_id, email=member.email,
                          role=member.role, status="pending", invite_token=invitation.token,
                          expires_at=invitation.expires_at)


class AcceptRequest(RequestBody):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    name: str | None = Field(default=None, max_length=members.MAX_NAME_LENGTH)


class AcceptanceBody(BaseModel):
    tenant_id: str
    user_id: str
    role: Role


@router.post("/members/accept/", response_model=AcceptanceBody,
             summary="Accept an invitation (no authentication: the token is the credential)")
async def accept(body: AcceptRequest, session: DbSession,
                 runtime: RuntimeDep) -> AcceptanceBody:
    accepted = await members.accept_invitation(session, token=body.token,
                                               password=body.password, name=body.name,
                                               now=runtime.clock())
    return AcceptanceBody(tenant_id=accepted.tenant_id, user_id=accepted.user_id,
                          role=accepted.role)


class MemberPatch(RequestBody):
    role: Role


@router.patch("/users/{user_id}/", response_model=MemberBody,
              summary="Change a member's role (members.manage; only owners touch owners)",
              responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def change_role(user_id: str, body: MemberPatch, caller: MembersManager,
                      session: DbSession, runtime: RuntimeDep) -> MemberBody:
    member = await members.change_member_role(session, tenant_id=caller.tenant_id,
                                              actor_role=caller.role, user_id=user_id,
                                              role=body.role)
    runtime.auth_cache.clear()
    return _member_body(member)


@router.delete("/users/{user_id}/", status_code=204, response_class=Response,
               summary="Remove a member or withdraw an invitation (members.manage)",
               responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def remove(user_id: str, caller: MembersManager, session: DbSession,
                 runtime: RuntimeDep) -> Response:
    await members.remove_member(session, tenant_id=caller.tenant_id, actor_role=caller.role,
                                user_id=user_id)
    runtime.auth_cache.clear()
    return Response(status_code=204)
