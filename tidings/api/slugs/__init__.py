"""The provider-slug API (``/api/v1/sms-providers/{slug}/…``): one URL shape over the tenant's
SMS apps, one per provider, authenticated like the native API. Errors here are
``{"error": ...}`` (``tidings.api.errors``)."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.slugs import bulk, outbox, providers

router = APIRouter()
router.include_router(providers.router)
router.include_router(bulk.router)
router.include_router(outbox.router)
