"""Shared API schema pieces: the strict request base, the error body, the pagination envelope."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
