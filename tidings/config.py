"""Runtime settings: every one is a ``TIDINGS_*`` environment variable (README has the table).

``Settings`` is built once by ``Settings.load()`` and handed down; nothing reads the environment
after start-up. The secret key, when unset, is generated into ``<var_dir>/secret.key`` on first
start (with a warning) so that a restart keeps sessions and encrypted data valid.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

PROVIDER_URL_PREFIX = "TIDINGS_PROVIDER_URL_"
DATABASE_URL_PREFIXES = ("sqlite+aiosqlite:", "postgresql+asyncpg:")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600}


def parse_rate(text: str) -> tuple[int, int]:
    """Parse ``"6000/min"`` into ``(6000, 60)``: a count per period in seconds."""
    match = _RATE_RE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"rate must look like '100/min' (per s, min or hour), got {text!r}")
    return int(match.group(1)), _RATE_PERIODS[match.group(2)]


class Settings(BaseSettings):
    """All of Tidings' configuration; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="TIDINGS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/tidings.db"
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_processes: int = Field(default=1, ge=1, le=64)
    worker_process: bool = True
    var_dir: Path = Path("./var")
    api_rate_limit: str = "6000/min"
    login_rate_limit: str = "10/min"
    max_request_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    bulk_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    invite_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    default_region: str = "US"
    wallet_currency: str = "USD"
    log_level: str = "INFO"
    provider_urls: dict[str, str] = Field(default_factory=dict)
    previous_secret_keys: str = ""
    sms_rate_limit: str = "100/min"
    sms_max_segments: int = Field(default=10, ge=1, le=255)
    retry_max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    dispatch_batch_size: int = Field(default=500, ge=1, le=10_000)
    dispatch_window: int = Field(default=64, ge=1, le=10_000)
    send_timeout_seconds: float = Field(default=15.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)
    outbox_dispatch_timeout_seconds: int = Field(default=900, ge=10, le=30 * 24 * 3600)
    callback_retry_base_seconds: float = Field(default=10.0, gt=0)
    callback_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    callback_max_age_seconds: float = Field(default=24 * 3600.0, gt=0)
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    callback_window: int = Field(default=64, ge=1, le=10_000)
    callback_allow_private_networks: bool = False
    auth_cache_seconds: float = Field(default=5.0, ge=0)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(DATABASE_URL_PREFIXES):
            raise ValueError("must start with sqlite+aiosqlite:/// (embedded) or "
                             "postgresql+asyncpg:// (production)")
        return value

    @field_validator("api_rate_limit", "login_rate_limit", "sms_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("default_region", "wallet_currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment and ``TIDINGS_PROVIDER_URL_<SLUG>`` overrides; resolve the key."""
        provider_urls = {
            name[len(PROVIDER_URL_PREFIX):].lower().replace("_", "-"): value
            for name, value in os.environ.items()
            if name.startswith(PROVIDER_URL_PREFIX) and value
        }
        settings = cls(**{"provider_urls": provider_urls, **overrides})  # type: ignore[arg-type]
        settings.secret_key = settings.secret_key or settings._stored_secret_key()
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def provider_url(self, slug: str, default: str) -> str:
        """The operator's base-URL override for a provider slug, else the provider's default."""
        return self.provider_urls.get(slug.lower().replace("_", "-"), default)

    def secret_keys(self) -> list[str]:
        """The current secret key first, then ``TIDINGS_PREVIOUS_SECRET_KEYS`` (comma-separated),
        which still decrypt credentials written before a key rotation."""
        previous = [key.strip() for key in self.previous_secret_keys.split(",") if key.strip()]
        return [self.require_secret_key(), *previous]

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise RuntimeError("secret key not resolved: build settings with Settings.load()")
        return self.secret_key

    def _stored_secret_key(self) -> str:
        path = self.var_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        log.warning("TIDINGS_SECRET_KEY is not set: generated one into %s. Back it up; "
                    "set TIDINGS_SECRET_KEY in production.", path)
        return key
