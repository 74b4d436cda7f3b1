"""The native API: ``/token/``, ``/refresh/``, ``/tenants/…``, ``/contacts/…`` and, later, the
channel APIs. One router module per resource; ``router`` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.native import auth, tenants

router = APIRouter()
router.include_router(auth.router)
router.include_router(tenants.router)
