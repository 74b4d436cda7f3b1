"""The native API: ``/token/``, ``/refresh/``, ``/tenants/…``, ``/contacts/…`` and, later, the
channel APIs. One router module per resource; ``router`` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.native import (
    auth,
    contacts,
    service_profiles,
    sms_apps,
    sms_broadcast,
    sms_messages,
    sms_templates,
    sms_webhooks,
    tenant_api_keys,
    tenant_members,
    tenant_tags,
    tenant_webhooks,
    tenants,
)

router = APIRouter()
# The send endpoint first: FastAPI tries routers in order, and it is the hottest path.
router.include_router(sms_messages.router)
router.include_router(sms_broadcast.router)
router.include_router(auth.router)
router.include_router(tenants.router)
router.include_router(tenant_members.router)
router.include_router(tenant_tags.router)
router.include_router(tenant_api_keys.router)
router.include_router(tenant_webhooks.router)
router.include_router(contacts.router)
router.include_router(sms_apps.router)
router.include_router(service_profiles.router)
router.include_router(sms_templates.router)
router.include_router(sms_webhooks.router)
