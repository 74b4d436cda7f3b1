"""Request bodies the slug API's endpoints share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SlugSend(BaseModel):
    """One SMS as the slug API takes it (``POST …/send``; the outbox adds its own fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mobile: str | int = Field(description="E.164, with or without +, or national.")
    message: str
    sender: str | None = None
    send_at: str | None = Field(default=None, alias="datetime",
                                description="ISO 8601; in the future to schedule.")
