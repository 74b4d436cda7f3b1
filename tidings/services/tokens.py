"""JWT access and refresh tokens (HS256), with an injected clock so expiry is testable.

Claims: ``sub`` (user id), ``typ`` (``access`` or ``refresh``), ``iat``, ``exp``, ``jti``. The
tenant is not in the token: a user picks it per request (``X-Tenant-ID``), and membership is
checked on every request so removing a member takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import jwt

from tidings.domain.clock import Clock
from tidings.errors import Unauthorized

TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


class TokenIssuer:
    """Issues and verifies this deployment's JWTs."""

    def __init__(self, secret_key: str, clock: Clock, access_ttl: timedelta,
                 refresh_ttl: timedelta) -> None:
        # A key of its own, derived from the secret, so JWTs never share a key with encryption.
        self._key = hashlib.sha256(b"tidings-jwt:" + secret_key.encode()).digest()
        self._clock = clock
        self._ttl: dict[TokenType, timedelta] = {"access": access_ttl, "refresh": refresh_ttl}

    def issue(self, user_id: str, token_type: TokenType) -> str:
        now = self._clock()
        claims = {"sub": user_id, "typ": token_type, "iat": int(now.timestamp()),
                  "exp": int((now + self._ttl[token_type]).timestamp()),
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def issue_pair(self, user_id: str) -> TokenPair:
        return TokenPair(self.issue(user_id, "access"), self.issue(user_id, "refresh"))

    def verify(self, token: str, token_type: TokenType) -> str:
        """The user id in a valid, unexpired token of ``token_type``; else ``Unauthorized``."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False,
                                         "require": ["exp", "sub", "typ"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token", "invalid_token") from exc
        if claims.get("typ") != token_type:
            raise Unauthorized(f"not a {token_type} token", "invalid_token")
        if int(claims["exp"]) <= int(self._clock().timestamp()):
            raise Unauthorized("token expired", "token_expired")
        return str(claims["sub"])
