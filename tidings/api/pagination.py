"""``limit``/``offset`` pagination, the same on every list of the native API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request

from tidings.api.schemas import Page

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int
    request: Request

    def page(self, results: list[T], count: int) -> Page[T]:
        """Wrap one page of ``results`` out of ``count`` in the envelope, with neighbour links."""
        url = self.request.url
        following = (str(url.include_query_params(limit=self.limit,
                                                  offset=self.offset + self.limit))
                     if self.offset + self.limit < count else None)
        preceding = (str(url.include_query_params(limit=self.limit,
                                                  offset=max(0, self.offset - self.limit)))
                     if self.offset > 0 else None)
        return Page[T](count=count, next=following, previous=preceding, results=results)


async def page_request(request: Request,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                 offset: Annotated[int, Query(ge=0)] = 0) -> PageRequest:
    return PageRequest(limit=limit, offset=offset, request=request)


Pagination = Annotated[PageRequest, Depends(page_request)]
