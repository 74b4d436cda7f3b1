"""Every provider, by the name the API uses for it (``provider`` of an SMS app). An explicit
table: adding a provider is its module, its fake, its tests and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tidings.providers.base import SmsProvider
from tidings.providers.sms import (
    android,
    cequens,
    fast2sms,
    fourjawaly,
    infobip,
    mora,
    msegat,
    msg91,
    simulator,
    smpp,
    taqnyat,
    twilio,
    unifonic,
    vonage,
)

SMS_PROVIDERS: Mapping[str, SmsProvider] = MappingProxyType({
    "TWILIO": twilio,
    "MSG91": msg91,
    "FAST2SMS": fast2sms,
    "SIMULATOR": simulator,
    "ANDROID": android,
    "INFOBIP": infobip,
    "VONAGE": vonage,
    "UNIFONIC": unifonic,
    "TAQNYAT": taqnyat,
    "MSEGAT": msegat,
    "FOURJAWALY": fourjawaly,
    "CEQUENS": cequens,
    "MORA": mora,
    "SMPP": smpp,
})

DLT_ONLY: frozenset[str] = frozenset({"MSG91", "FAST2SMS"})
"""Providers that only carry DLT-registered traffic: every send through them names a template."""

PULL_PROVIDERS: frozenset[str] = frozenset({"ANDROID"})
"""Providers whose devices pull their messages: the dispatcher sends them none (live ones)."""

SESSION_PROVIDERS: frozenset[str] = frozenset({"SMPP"})
"""Providers reached over long-lived sessions the worker holds (SMPP binds), not per-request
HTTP: the dispatcher sends through ``pipeline.smpp_binds``; nothing is sent while an API caller
waits, so they have no slug either."""

_NO_SLUG = PULL_PROVIDERS | SESSION_PROVIDERS


def sms_provider(name: str) -> SmsProvider:
    """The provider registered as ``name`` (``"TWILIO"``); ``KeyError`` when there is none."""
    return SMS_PROVIDERS[name]


SLUG_SUFFIX = "-sms"
"""The provider-slug API names a provider by its module's slug plus this (``twilio-sms``)."""


def provider_for_slug(slug: str) -> str | None:
    """The registry name of the provider the slug API calls ``slug`` (``"twilio-sms"`` ->
    ``"TWILIO"``), or ``None``. Pull providers (phones) have no slug: nothing is sent while
    the caller waits, nor do session providers (SMPP)."""
    for name, provider in SMS_PROVIDERS.items():
        if name not in _NO_SLUG and f"{provider.slug}{SLUG_SUFFIX}" == slug:
            return name
    return None


def slug_of(name: str) -> str | None:
    """The slug API's name for the registered provider ``name`` (``"TWILIO"`` ->
    ``"twilio-sms"``), ``None`` for pull providers."""
    if name in _NO_SLUG or name not in SMS_PROVIDERS:
        return None
    return f"{SMS_PROVIDERS[name].slug}{SLUG_SUFFIX}"


def provider_slugs() -> list[str]:
    """Every slug of the slug API, sorted."""
    return sorted(f"{provider.slug}{SLUG_SUFFIX}" for name, provider in SMS_PROVIDERS.items()
                  if name not in _NO_SLUG)
