"""The SMS-Gateway-for-Android compatible surface: the 3rd-party client API and the phone API,
each served at its cloud path and under ``/api`` (the private server's), plus the root
``/health/live|ready|startup`` probes. Errors here are ``{"message": ...}``
(``tidings.api.errors``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings.api.android import mobile, thirdparty
from tidings.api.deps import RuntimeDep

router = APIRouter()
router.include_router(thirdparty.router, prefix="/3rdparty/v1")
router.include_router(thirdparty.router, prefix="/api/3rdparty/v1", include_in_schema=False)
router.include_router(mobile.router, prefix="/mobile/v1")
router.include_router(mobile.router, prefix="/api/mobile/v1", include_in_schema=False)


@router.get("/health/live", tags=["operations"], summary="Liveness (Android surface)")
@router.get("/health/ready", tags=["operations"], summary="Readiness (Android surface)")
@router.get("/health/startup", tags=["operations"], summary="Startup (Android surface)")
async def health_probe(runtime: RuntimeDep) -> JSONResponse:
    return await thirdparty.health_answer(runtime)
