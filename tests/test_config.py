"""Settings: TIDINGS_* variables, defaults, rates, provider URL overrides, the secret key file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from tidings.config import Settings, parse_rate


@pytest.fixture(autouse=True)
def no_tidings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TIDINGS_")]:
        monkeypatch.delenv(name)


def test_defaults_serve_locally_on_an_embedded_database(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url == "sqlite+aiosqlite:///./var/tidings.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.public_url == "http://127.0.0.1:8000"
    assert (settings.api_rate_limit, settings.login_rate_limit) == ("6000/min", "10/min")
    assert settings.redis_url is None
    assert settings.is_sqlite


def test_every_setting_is_read_from_a_tidings_variable(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    values = {
        "TIDINGS_DATABASE_URL": "postgresql+asyncpg://tidings@db/tidings",
        "TIDINGS_SECRET_KEY": "from-the-environment",
        "TIDINGS_PUBLIC_URL": "https://sms.example.com",
        "TIDINGS_REDIS_URL": "redis://cache:6379/0",
        "TIDINGS_HOST": "0.0.0.0",
        "TIDINGS_PORT": "9000",
        "TIDINGS_VAR_DIR": str(tmp_path),
        "TIDINGS_API_RATE_LIMIT": "50/s",
        "TIDINGS_LOGIN_RATE_LIMIT": "5/min",
        "TIDINGS_DEFAULT_REGION": "gb",
        "TIDINGS_WALLET_CURRENCY": "eur",
        "TIDINGS_LOG_LEVEL": "DEBUG",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    settings = Settings.load()

    assert settings.database_url == "postgresql+asyncpg://tidings@db/tidings"
    assert not settings.is_sqlite
    assert settings.secret_key == "from-the-environment"
    assert (settings.public_url, settings.redis_url) == ("https://sms.example.com",
                                                         "redis://cache:6379/0")
    assert (settings.host, settings.port, settings.var_dir) == ("0.0.0.0", 9000, tmp_path)
    assert (settings.api_rate_limit, settings.login_rate_limit) == ("50/s", "5/min")
    assert (settings.default_region, settings.wallet_currency) == ("GB", "EUR")
    assert settings.log_level == "DEBUG"
    assert not (tmp_path / "secret.key").exists()


def test_command_line_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("TIDINGS_PORT", "9000")
    settings = Settings.load(port=9100, secret_key="k", var_dir=tmp_path)
    assert settings.port == 9100


def test_provider_url_overrides_come_from_tidings_provider_url_slug(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDINGS_PROVIDER_URL_TWILIO", "http://127.0.0.1:9001")
    monkeypatch.setenv("TIDINGS_PROVIDER_URL_AFRICAS_TALKING", "http://127.0.0.1:9002")
    settings = Settings.load(secret_key="k", var_dir=tmp_path)
    assert settings.provider_url("twilio", "https://api.twilio.com") == "http://127.0.0.1:9001"
    assert settings.provider_url("africas-talking", "https://x") == "http://127.0.0.1:9002"
    assert settings.provider_url("africas_talking", "https://x") == "http://127.0.0.1:9002"
    assert settings.provider_url("plivo", "https://api.plivo.com") == "https://api.plivo.com"


@pytest.mark.parametrize(("text", "rate"), [("6000/min", (6000, 60)), ("100/m", (100, 60)),
                                            ("5 / s", (5, 1)), ("10/second", (10, 1)),
                                            ("3600/hour", (3600, 3600)), ("1/h", (1, 3600))])
def test_rates_are_a_count_per_second_minute_or_hour(text: str, rate: tuple[int, int]) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "0/min", "-1/min", "100/day", "fast", "1.5/s"])
def test_a_malformed_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate must look like"):
        parse_rate(text)
    with pytest.raises(ValidationError):
        Settings(api_rate_limit=text)


def test_a_missing_secret_key_is_generated_once_into_the_var_dir_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    var_dir = tmp_path / "var"
    with caplog.at_level(logging.WARNING, logger="tidings.config"):
        first = Settings.load(var_dir=var_dir)
    again = Settings.load(var_dir=var_dir)

    key_file = var_dir / "secret.key"
    assert first.secret_key
    assert len(first.secret_key) >= 48
    assert again.secret_key == first.secret_key
    assert key_file.read_text().strip() == first.secret_key
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "TIDINGS_SECRET_KEY is not set" in caplog.text
    assert len(caplog.records) == 1


def test_require_secret_key_refuses_unresolved_settings() -> None:
    with pytest.raises(RuntimeError, match="Settings.load"):
        Settings().require_secret_key()


@pytest.mark.parametrize("url", ["postgresql://tidings@db/tidings", "mysql://db/tidings",
                                 "sqlite:///./var/tidings.db", "tidings.db"])
def test_a_database_url_without_a_supported_async_driver_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="sqlite\\+aiosqlite:/// .* postgresql\\+asyncpg://"):
        Settings(database_url=url)
