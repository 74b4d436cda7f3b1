"""The native API: ``/token/``, ``/refresh/``, ``/tenants/…``, ``/contacts/…`` and, later, the
channel APIs. One router module per resource; ``router`` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.native import (
    auth,
    contacts,
    tenant_api_keys,
    tenant_members,
    tenant_tags,
    tenants,
)

router = APIRouter()
router.include_router(auth.router)
router.include_router(tenants.router)
router.include_router(tenant_members.router)
router.include_router(tenant_tags.router)
router.include_router(tenant_api_keys.router)
router.include_router(contacts.router)
