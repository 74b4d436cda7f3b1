"""Who calls the Android surface, and how phones join it.

- **Phones register** with ``Authorization: Bearer <registration token>`` (shown on the
  tenant's ``ANDROID`` app): each such registration creates a new *login* (the original
  server's "user": 6 upper-case letters, a 14-letter password shown once), as the original
  private server does. A phone joins an existing login with ``Basic login:password`` or
  ``Code <one-time code>``. The registration token is an HMAC of the app's id and webhook
  token under the deployment's secret: nothing extra is stored, and it names its app.
- **Phones call** the phone API with their own bearer token (stored as SHA-256); a deleted
  phone, or one of a deleted app, gets 401.
- **Clients call** the 3rd-party API with a login's Basic pair (every scope), a JWT from
  ``/auth/token`` (its scopes; revocable by ``jti``), or a tenant API key, which acts as the
  tenant's oldest login with the scopes its role allows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import (
    AndroidCode,
    AndroidDevice,
    AndroidLogin,
    AndroidToken,
    ChannelAccount,
)
from tidings.domain.android import SCOPES, has_scope, new_nanoid
from tidings.domain.ids import new_id
from tidings.domain.keys import KeyMode, looks_like_api_key, sha256_hex
from tidings.domain.passwords import hash_password, verify_password
from tidings.domain.roles import Permission, may
from tidings.domain.ttl_cache import TtlCache
from tidings.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from tidings.services.auth import authenticate
from tidings.services.tokens import TokenIssuer

ANDROID_PROVIDER = "ANDROID"
LOGIN_LENGTH = 6
PASSWORD_LENGTH = 14
MIN_NEW_PASSWORD_LENGTH = 14
CODE_LIFETIME = timedelta(seconds=60)
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
LAST_SEEN_RESOLUTION = timedelta(seconds=30)
"""A phone's ``lastSeen`` is written at most this often (every poll would be a write)."""

_SCOPE_PERMISSIONS: dict[str, Permission] = {
    "messages:send": Permission.MESSAGES_SEND, "messages:cancel": Permission.MESSAGES_SEND,
    "messages:export": Permission.MESSAGES_SEND, "inbox:refresh": Permission.MESSAGES_SEND,
    "devices:delete": Permission.APPS_MANAGE, "webhooks:write": Permission.APPS_MANAGE,
    "webhooks:delete": Permission.APPS_MANAGE, "settings:write": Permission.APPS_MANAGE,
    "tokens:manage": Permission.APPS_MANAGE,
}
"""What a tenant API key's role must allow for each scope; every other scope is a read."""


@dataclass(frozen=True)
class AndroidCaller:
    """The caller of one 3rd-party request: one login of one tenant's Android app, with the
    scopes it holds (``None``: all of them). ``live`` is false for a tenant's test-mode API
    key, which may read but not send: phones send real SMS, and test keys never spend."""

    tenant_id: str
    login_id: str
    app_id: str
    scopes: frozenset[str] | None = None
    live: bool = True

    def require(self, scope: str) -> None:
        if self.scopes is not None and not has_scope(self.scopes, scope):
            raise Forbidden(f"scope required: {scope}", "scope_required")


@dataclass(frozen=True)
class Registration:
    """A registered phone: its id and bearer token, and the login it belongs to. ``password``
    is set only when the registration created the login."""

    device: AndroidDevice
    token: str
    login: str
    password: str | None


@dataclass(frozen=True)
class IssuedToken:
    """A JWT pair, as ``/auth/token`` answers it."""

    jti: str
    access_token: str
    refresh_token: str
    expires_at: datetime


# --- registration ---------------------------------------------------------------------------


def registration_token(app: ChannelAccount, secret_key: str) -> str:
    """The token phones register with for ``app``: ``<app id>.<MAC>``."""
    return f"{app.id}.{_registration_mac(app.id, app.webhook_token, secret_key)}"


async def app_for_registration_token(session: AsyncSession, token: str,
                                     secret_key: str) -> ChannelAccount:
    """The active ``ANDROID`` app ``token`` was made for; ``Unauthorized`` otherwise."""
    app_id, _, mac = token.partition(".")
    app = (await session.execute(select(ChannelAccount).where(
        ChannelAccount.id == app_id, ChannelAccount.provider == ANDROID_PROVIDER,
        ChannelAccount.status == "active"))).scalar_one_or_none() if mac else None
    if app is None or not hmac.compare_digest(
            mac, _registration_mac(app.id, app.webhook_token, secret_key)):
        raise Unauthorized("invalid registration token", "invalid_token")
    return app


async def register_device(session: AsyncSession, *, authorization: str | None,
                          secret_key: str, name: str | None, push_token: str | None,
                          sim_cards: list[dict[str, Any]] | None,
                          now: datetime) -> Registration:
    """Register a phone under the login ``authorization`` names or creates (module docstring).
    ``Unauthorized`` without valid credentials: this is a private server."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    password: str | None = None
    if scheme.lower() == "bearer" and credential:
        app = await app_for_registration_token(session, credential, secret_key)
        login, password = await _create_login(session, app, now)
    elif scheme.lower() == "basic" and credential:
        login = await _login_for_basic(session, credential)
    elif scheme.lower() == "code" and credential:
        login = await _login_for_code(session, credential, now)
    else:
        raise Unauthorized("register with Authorization: Bearer <registration token>, Basic "
                           "<login:password> or Code <one-time code>", "not_authenticated")
    token = secrets.token_urlsafe(32)
    device = AndroidDevice(
        id=new_nanoid(), tenant_id=login.tenant_id, channel_account_id=login.channel_account_id,
        login_id=login.id, name=(name or "").strip()[:128] or None,
        push_token=(push_token or None), sim_cards=sim_cards, token_hash=sha256_hex(token),
        created_at=now, updated_at=now, last_seen_at=now, deleted_at=None)
    session.add(device)
    await session.flush()
    return Registration(device=device, token=token, login=login.login, password=password)


async def one_time_code(session: AsyncSession, caller: AndroidCaller,
                        now: datetime) -> AndroidCode:
    """A 6-digit code, valid for a minute, with which one more phone joins the caller's login."""
    await session.execute(delete(AndroidCode).where(AndroidCode.expires_at <= now))
    for _ in range(10):
        code = AndroidCode(code=f"{secrets.randbelow(1_000_000):06d}", login_id=caller.login_id,
                           expires_at=now + CODE_LIFETIME)
        try:
            async with session.begin_nested():
                session.add(code)
            return code
        except IntegrityError:  # that code is in use right now: draw another
            continue
    raise InvalidInput("could not draw a free one-time code; try again")


# --- phones ---------------------------------------------------------------------------------


async def authenticate_device(session: AsyncSession, authorization: str | None,
                              now: datetime) -> AndroidDevice:
    """The live phone whose bearer token ``authorization`` carries; ``Unauthorized`` for a
    missing, unknown or deleted one (or one of a deleted app). Refreshes ``last_seen_at``."""
    scheme, _, credential = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send Authorization: Bearer <device token>", "not_authenticated")
    device = (await session.execute(
        select(AndroidDevice).join(ChannelAccount,
                                   ChannelAccount.id == AndroidDevice.channel_account_id)
        .where(AndroidDevice.token_hash == sha256_hex(credential.strip()),
               AndroidDevice.deleted_at.is_(None), ChannelAccount.status == "active")
    )).scalar_one_or_none()
    if device is None:
        raise Unauthorized("unknown or deleted device", "invalid_token")
    if now - device.last_seen_at >= LAST_SEEN_RESOLUTION:
        device.last_seen_at = now
        await session.flush()
    return device


async def update_device(session: AsyncSession, device: AndroidDevice, *, device_id: str,
                        push_token: str | None, sim_cards: list[dict[str, Any]] | None,
                        now: datetime) -> None:
    """``PATCH /mobile/v1/device``: the phone's push token and SIM cards; ``Forbidden`` when
    ``device_id`` is not the calling phone."""
    if device_id != device.id:
        raise Forbidden("the id is not this device's", "device_mismatch")
    device.push_token = push_token or None
    if sim_cards is not None:
        device.sim_cards = sim_cards
    device.updated_at = now
    await session.flush()


async def change_password(session: AsyncSession, device: AndroidDevice, *, current: str,
                          new: str, now: datetime) -> None:
    """Change the password of the phone's login; ``Unauthorized`` for a wrong current one."""
    login = await session.get(AndroidLogin, device.login_id)
    if login is None or not await asyncio.to_thread(verify_password, login.password_hash,
                                                    current):
        raise Unauthorized("the current password is wrong", "invalid_credentials")
    if len(new) < MIN_NEW_PASSWORD_LENGTH:
        raise InvalidInput.for_field("newPassword",
                                     f"must be at least {MIN_NEW_PASSWORD_LENGTH} characters")
    login.password_hash = await asyncio.to_thread(hash_password, new)
    login.updated_at = now
    await session.flush()


async def list_devices(session: AsyncSession, caller: AndroidCaller) -> list[AndroidDevice]:
    """The login's phones that are not deleted, oldest first."""
    return list((await session.execute(select(AndroidDevice).where(
        AndroidDevice.login_id == caller.login_id, AndroidDevice.deleted_at.is_(None))
        .order_by(AndroidDevice.created_at, AndroidDevice.id))).scalars())


async def delete_device(session: AsyncSession, caller: AndroidCaller, device_id: str,
                        now: datetime) -> None:
    """Remove a phone: its token stops working. ``NotFound`` for another login's phone."""
    result = await session.execute(
        update(AndroidDevice).where(AndroidDevice.id == device_id,
                                    AndroidDevice.login_id == caller.login_id,
                                    AndroidDevice.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now).execution_options(synchronize_session=False))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("device not found", "device_not_found")


# --- clients --------------------------------------------------------------------------------


async def authenticate_client(session: AsyncSession, *, authorization: str | None,
                              tokens: TokenIssuer, secret_key: str, now: datetime,
                              cache: TtlCache[Any] | None = None) -> AndroidCaller:
    """The caller of a 3rd-party request (module docstring); ``Unauthorized`` otherwise."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if not credential:
        raise Unauthorized("send Authorization: Basic <login:password> or Bearer <token>",
                           "not_authenticated")
    if scheme.lower() == "bearer" and not looks_like_api_key(credential):
        # A JWT is cheap to check and is not cached: a revocation takes effect at once.
        return await _caller_for_jwt(session, credential, secret_key, "access", now)
    if scheme.lower() not in ("basic", "bearer"):
        raise Unauthorized("unsupported authorization scheme", "not_authenticated")
    cache_key = ("android", scheme.lower(), sha256_hex(credential))
    cached = cache.get(cache_key) if cache is not None else None
    if isinstance(cached, AndroidCaller):
        return cached
    if isinstance(cached, asyncio.Future):  # another request is checking the same password
        try:
            caller: AndroidCaller = await asyncio.shield(cached)
            return caller
        except asyncio.CancelledError:
            if not cached.cancelled():  # this request was cancelled, not the check
                raise
    # Single flight: concurrent requests with a credential not yet cached wait for one argon2
    # check (~50 ms of CPU each) instead of all making their own.
    pending: asyncio.Future[AndroidCaller] = asyncio.get_running_loop().create_future()
    if cache is not None:
        cache.put(cache_key, pending)
    try:
        caller = await _caller_for_credential(session, scheme.lower(), credential, tokens)
    except BaseException as exc:
        if cache is not None:
            cache.discard(cache_key)
        if isinstance(exc, asyncio.CancelledError):
            pending.cancel()  # the waiters check for themselves
        else:
            pending.set_exception(exc)
            pending.exception()  # marked retrieved: nobody may be waiting
        raise
    pending.set_result(caller)
    if cache is not None:
        cache.put(cache_key, caller)
    return caller


async def _caller_for_credential(session: AsyncSession, scheme: str, credential: str,
                                 tokens: TokenIssuer) -> AndroidCaller:
    if scheme == "basic":
        login = await _login_for_basic(session, credential)
        return AndroidCaller(login.tenant_id, login.id, login.channel_account_id)
    principal = await authenticate(session, tokens, credential, None)
    login = await _tenant_login(session, principal.tenant_id)
    return AndroidCaller(login.tenant_id, login.id, login.channel_account_id,
                         frozenset(scope for scope in SCOPES if may(
                             principal.role, _SCOPE_PERMISSIONS.get(scope, Permission.READ))),
                         live=principal.mode == KeyMode.LIVE)


async def issue_token(session: AsyncSession, caller: AndroidCaller, *, scopes: Sequence[str],
                      ttl_seconds: int | None, secret_key: str, now: datetime) -> IssuedToken:
    """A JWT pair for the caller's login with ``scopes`` (each must be known, and held by the
    caller). ``ttl_seconds`` sets the access token's life (default 15 minutes)."""
    unknown = sorted(set(scopes) - SCOPES)
    if not scopes or unknown:
        raise InvalidInput.for_field("scopes", f"unknown scope {unknown[0]}" if unknown
                                     else "at least one scope is required")
    for scope in scopes:
        caller.require(scope)
    if ttl_seconds is not None and not 1 <= ttl_seconds <= int(REFRESH_TTL.total_seconds()):
        raise InvalidInput.for_field("ttl", "must be 1 second to 30 days")
    return await _issue(session, caller.login_id, list(dict.fromkeys(scopes)),
                        timedelta(seconds=ttl_seconds) if ttl_seconds else ACCESS_TTL,
                        secret_key, now)


async def refresh_token(session: AsyncSession, *, authorization: str | None, secret_key: str,
                        now: datetime) -> IssuedToken:
    """A new pair for a valid refresh token, which is used up (its pair is revoked)."""
    scheme, _, credential = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send Authorization: Bearer <refresh token>", "not_authenticated")
    caller = await _caller_for_jwt(session, credential.strip(), secret_key, "refresh", now)
    claims = _decode(credential.strip(), secret_key)
    await revoke_token(session, caller, str(claims["jti"]), now)
    access_life = timedelta(seconds=int(claims.get("atl") or ACCESS_TTL.total_seconds()))
    return await _issue(session, caller.login_id, sorted(caller.scopes or ()), access_life,
                        secret_key, now)


async def revoke_token(session: AsyncSession, caller: AndroidCaller, jti: str,
                       now: datetime) -> None:
    """Revoke the pair ``jti`` of the caller's login (nothing happens for an unknown one)."""
    await session.execute(
        update(AndroidToken).where(AndroidToken.jti == jti,
                                   AndroidToken.login_id == caller.login_id,
                                   AndroidToken.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))


# --- internals ------------------------------------------------------------------------------


def _registration_mac(app_id: str, webhook_token: str, secret_key: str) -> str:
    key = hashlib.sha256(b"tidings-android-registration:" + secret_key.encode()).digest()
    mac = hmac.new(key, f"{app_id}:{webhook_token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def _jwt_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"tidings-android-jwt:" + secret_key.encode()).digest()


async def _create_login(session: AsyncSession, app: ChannelAccount,
                        now: datetime) -> tuple[AndroidLogin, str]:
    password = "".join(secrets.choice(string.ascii_lowercase) for _ in range(PASSWORD_LENGTH))
    password_hash = await asyncio.to_thread(hash_password, password)
    for _ in range(10):
        login = AndroidLogin(
            id=new_id(), tenant_id=app.tenant_id, channel_account_id=app.id,
            login="".join(secrets.choice(string.ascii_uppercase) for _ in range(LOGIN_LENGTH)),
            password_hash=password_hash, settings={}, created_at=now, updated_at=now)
        try:
            async with session.begin_nested():
                session.add(login)
            return login, password
        except IntegrityError:  # that login is taken: draw another
            continue
    raise InvalidInput("could not draw a free login; try again")


async def _login_for_basic(session: AsyncSession, credential: str) -> AndroidLogin:
    try:
        login_name, _, password = base64.b64decode(credential, validate=True).decode(
        ).partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials", "invalid_credentials") from None
    login = (await session.execute(
        select(AndroidLogin).join(ChannelAccount,
                                  ChannelAccount.id == AndroidLogin.channel_account_id)
        .where(AndroidLogin.login == login_name, ChannelAccount.status == "active")
    )).scalar_one_or_none()
    if login is None or not await asyncio.to_thread(verify_password, login.password_hash,
                                                    password):
        raise Unauthorized("login or password is wrong", "invalid_credentials")
    return login


async def _login_for_code(session: AsyncSession, code: str, now: datetime) -> AndroidLogin:
    found = await session.get(AndroidCode, code)
    login = await session.get(AndroidLogin, found.login_id) if found is not None else None
    if found is None or login is None or found.expires_at <= now:
        raise Unauthorized("unknown or expired code", "invalid_code")
    await session.delete(found)
    return login


async def _tenant_login(session: AsyncSession, tenant_id: str) -> AndroidLogin:
    login = (await session.execute(
        select(AndroidLogin).join(ChannelAccount,
                                  ChannelAccount.id == AndroidLogin.channel_account_id)
        .where(AndroidLogin.tenant_id == tenant_id, ChannelAccount.status == "active")
        .order_by(AndroidLogin.created_at, AndroidLogin.id).limit(1))).scalar_one_or_none()
    if login is None:
        raise Forbidden("the tenant has no Android login yet: register a phone with the "
                        "ANDROID app's registration token first", "no_android_login")
    return login


async def _issue(session: AsyncSession, login_id: str, scopes: list[str],
                 access_life: timedelta, secret_key: str, now: datetime) -> IssuedToken:
    jti = new_nanoid()
    expires_at = now + access_life
    base = {"sub": login_id, "jti": jti, "scopes": scopes, "iat": int(now.timestamp())}
    access = jwt.encode({**base, "typ": "access", "exp": int(expires_at.timestamp())},
                        _jwt_key(secret_key), algorithm="HS256")
    refresh = jwt.encode({**base, "typ": "refresh", "atl": int(access_life.total_seconds()),
                          "exp": int((now + REFRESH_TTL).timestamp())},
                         _jwt_key(secret_key), algorithm="HS256")
    session.add(AndroidToken(jti=jti, login_id=login_id, scopes=scopes,
                             expires_at=now + REFRESH_TTL, revoked_at=None, created_at=now))
    await session.flush()
    return IssuedToken(jti=jti, access_token=access, refresh_token=refresh,
                       expires_at=expires_at)


def _decode(token: str, secret_key: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, _jwt_key(secret_key), algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False,
                     "require": ["exp", "sub", "typ", "jti"]})
    except jwt.PyJWTError:
        raise Unauthorized("invalid token", "invalid_token") from None
    return claims


async def _caller_for_jwt(session: AsyncSession, token: str, secret_key: str, kind: str,
                          now: datetime) -> AndroidCaller:
    claims = _decode(token, secret_key)
    if claims.get("typ") != kind or int(claims["exp"]) <= int(now.timestamp()):
        raise Unauthorized(f"invalid or expired {kind} token", "invalid_token")
    row = (await session.execute(
        select(AndroidToken, AndroidLogin)
        .join(AndroidLogin, AndroidLogin.id == AndroidToken.login_id)
        .join(ChannelAccount, ChannelAccount.id == AndroidLogin.channel_account_id)
        .where(AndroidToken.jti == str(claims["jti"]), AndroidToken.revoked_at.is_(None),
               ChannelAccount.status == "active"))).first()
    if row is None:
        raise Unauthorized("the token was revoked", "invalid_token")
    stored, login = row
    return AndroidCaller(login.tenant_id, login.id, login.channel_account_id,
                         frozenset(_scopes(stored.scopes)))


def _scopes(value: Collection[str]) -> list[str]:
    return [scope for scope in value if scope in SCOPES]
