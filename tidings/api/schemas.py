"""Shared API schema pieces: the strict request base, the error body, the pagination envelope."""

from __future__ import annotations

from typing import Generic, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T")
BodyT = TypeVar("BodyT", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def parse_json_body(model: type[BodyT], raw: bytes) -> BodyT:
    """``model`` from a raw JSON request body, failing as a FastAPI body parameter does (a
    ``RequestValidationError``, which ``api.errors`` answers 400), for endpoints that read
    their own body."""
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])}
             for error in exc.errors(include_url=False)]) from None


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every non-2xx answer of the native API."""

    detail: str
    code: str
    errors: list[FieldProblem] | None = None


class Page(BaseModel, Generic[T]):
    """One page of a list: ``next``/``previous`` are full URLs or null."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]
