"""The OpenAPI document as the API really behaves: validation errors answer 400 with the error
body, so FastAPI's generated 422 entries are replaced by 400 ``ErrorBody`` entries."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            for item in schema.get("paths", {}).values():
                for method, operation in item.items():
                    if method in _HTTP_METHODS and operation["responses"].pop("422", None):
                        operation["responses"].setdefault("400", {
                            "description": "Invalid input (fields listed in `errors`)",
                            "content": {"application/json": {"schema": _ERROR_REF}}})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
