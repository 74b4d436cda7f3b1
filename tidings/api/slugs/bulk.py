"""``POST /api/v1/sms-providers/{slug}/bulk-send`` and ``GET …/progress``: a CSV of messages sent
through the tenant's app for the slug, as one job, and the live counters of the latest job.

``bulk-send`` needs ``messages.send``; it takes a multipart form whose field ``file`` is the
CSV (``mobile``, ``message``, optional ``sender`` and ``datetime``; the rules are in
``tidings.services.bulk_send``). A file over ``TIDINGS_BULK_MAX_BYTES`` answers 413 before it
is read (or, sent without a length, once it is spooled). Every accepted row is on disk before
the answer. A job of at most ``HOLD_MAX_ROWS`` rows with nothing scheduled for later is waited
for, up to ``HOLD_SECONDS``, until no message is pending: 200 with the final counters, the
provider's failures listed with the row errors. Any other job answers 202 with its ``id`` and
``status`` and the counters of that moment; ``progress`` follows it::

    200 {"id", "total", "sent", "failed", "errors": [{"row", "mobile", "message"}],
         "warnings": [...], "elapsed_ms"}
    202 {"id", "status", "total", "sent", "failed", "errors", "warnings", "elapsed_ms"}
    GET …/progress -> {"id", "status", "total", "sent", "failed", "pending"}

A bad file answers 400 ``{"error", "code"}`` and stores nothing; a file with no sendable row
answers 400 ``{"error", "code", "errors": [...]}`` with the row errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from tidings.api.deps import DbSession, RuntimeDep
from tidings.api.slugs.deps import InstalledApp, SendingApp
from tidings.errors import InvalidInput, PayloadTooLarge
from tidings.services import bulk_send, sms_send
from tidings.services.broadcasts import RejectedRow
from tidings.services.bulk_send import JobCounts, NoRowSendable

router = APIRouter(prefix="/api/v1/sms-providers/{slug}", tags=["sms providers (by slug)"])


class RowError(BaseModel):
    row: int | None = Field(description="The data row, 1 for the first row after the header.")
    mobile: str = Field(description="The mobile cell as written.")
    message: str = Field(description="Why the row was not sent.")


class BulkResult(BaseModel):
    """200: the job is done (no message pending)."""

    id: str
    total: int = Field(description="Data rows read: sent + failed + skipped repeats.")
    sent: int = Field(description="Messages the provider accepted.")
    failed: int = Field(description="Rows in error plus messages failed, expired or cancelled.")
    errors: list[RowError] = Field(description=f"The first {bulk_send.MAX_LISTED_ERRORS}.")
    warnings: list[str]
    elapsed_ms: int


class BulkAccepted(BulkResult):
    """202: the job is stored and being sent; follow it with ``GET …/progress``."""

    status: str = Field(description="queued, sending or completed.")


class Progress(BaseModel):
    id: str | None
    status: str = Field(description="none (no job yet), queued, sending or completed.")
    total: int
    sent: int
    failed: int
    pending: int = Field(description="Messages queued or being sent.")


_UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "format": "binary",
        "description": "CSV (UTF-8): mobile, message, optional sender and datetime."}}}}}}}


def _rows(errors: list[RejectedRow]) -> list[dict[str, Any]]:
    return [{"row": error.row, "mobile": error.phone, "message": error.reason}
            for error in errors]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the file is larger than {limit} bytes (TIDINGS_BULK_MAX_BYTES): "
                           "split it into smaller files")


@router.post("/bulk-send", openapi_extra=_UPLOAD, response_model=BulkResult,
             responses={202: {"model": BulkAccepted}},
             summary="Send the messages of a CSV as one job (messages.send)")
async def bulk_send_csv(request: Request, caller: SendingApp, session: DbSession,
                        runtime: RuntimeDep) -> JSONResponse:
    started = runtime.monotonic()
    principal, app = caller
    limit = runtime.settings.bulk_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput.for_field("file", "send the CSV as the multipart/form-data field "
                                         "file", "missing_file")
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        sender = await sms_send.tenant_sender(session, principal.tenant_id,
                                              principal.mode.value)
        try:
            job = await bulk_send.accept_job(
                session, sender, app, upload.file, now=runtime.clock(),
                max_segments=runtime.settings.sms_max_segments)
        except NoRowSendable as refused:
            await session.rollback()
            return JSONResponse({"error": refused.detail, "code": refused.code,
                                 "errors": _rows(refused.rows)}, status_code=400)
    await session.commit()
    counts, errors, job_id = job.counts, job.errors, job.counts.id
    if job.holdable and job_id is not None:
        counts = await bulk_send.wait_for_job(
            runtime.read_sessions, principal.tenant_id, job_id,
            until=started + bulk_send.HOLD_SECONDS, monotonic=runtime.monotonic)
        if counts.pending == 0:
            async with runtime.read_sessions() as reads:
                failures = await bulk_send.provider_failures(reads, job_id, job.rows)
            return JSONResponse(_answer(counts, bulk_send.merged_errors([*errors, *failures]),
                                        job.warnings, runtime.monotonic() - started))
    return JSONResponse(_answer(counts, errors, job.warnings, runtime.monotonic() - started,
                                with_status=True), status_code=202)


def _answer(counts: JobCounts, errors: list[RejectedRow], warnings: list[str],
            elapsed: float, *, with_status: bool = False) -> dict[str, Any]:
    status = {"status": counts.status} if with_status else {}
    return {"id": counts.id, **status, "total": counts.total, "sent": counts.sent,
            "failed": counts.failed, "errors": _rows(errors), "warnings": warnings,
            "elapsed_ms": round(elapsed * 1000)}


@router.get("/progress", response_model=Progress,
            summary="Live counters of the latest bulk job through this slug's app")
async def progress(app: InstalledApp, session: DbSession) -> Progress:
    counts = await bulk_send.latest_job(session, app.tenant_id, app.id)
    return Progress(id=counts.id, status=counts.status, total=counts.total, sent=counts.sent,
                    failed=counts.failed, pending=counts.pending)
