"""``POST /token/`` (email + password → access and refresh JWTs) and ``POST /refresh/``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tidings.api.deps import DbSession, RuntimeDep
from tidings.api.schemas import ErrorBody, RequestBody
from tidings.errors import RateLimited
from tidings.pipeline.throttle import retry_after_seconds
from tidings.services import auth

router = APIRouter(tags=["auth"], responses={401: {"model": ErrorBody}, 400: {"model": ErrorBody}})


class TokenRequest(RequestBody):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class TokenPairBody(BaseModel):
    access: str
    refresh: str


class RefreshRequest(RequestBody):
    refresh: str = Field(max_length=4096)


class AccessBody(BaseModel):
    access: str


@router.post("/token/", response_model=TokenPairBody,
             summary="Exchange email and password for JWTs",
             responses={429: {"model": ErrorBody}})
async def obtain_token(body: TokenRequest, session: DbSession,
                       runtime: RuntimeDep) -> TokenPairBody:
    wait = await runtime.login_limiter.take(body.email.strip().lower())
    if wait is not None:
        raise RateLimited(f"too many login attempts for this email "
                          f"(limit {runtime.settings.login_rate_limit})", retry_after_seconds(wait))
    pair = await auth.login(session, runtime.tokens, body.email, body.password)
    return TokenPairBody(access=pair.access, refresh=pair.refresh)


@router.post("/refresh/", response_model=AccessBody,
             summary="Exchange a refresh JWT for an access JWT")
async def refresh_token(body: RefreshRequest, session: DbSession,
                        runtime: RuntimeDep) -> AccessBody:
    return AccessBody(access=await auth.refresh(session, runtime.tokens, body.refresh))
