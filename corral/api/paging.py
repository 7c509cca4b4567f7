"""The ``limit``/``marker`` query of a paged list, and its answer (the scheme: ``corral.paging``)."""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from fastapi import Query, Response
from fastapi.exceptions import RequestValidationError

from corral.paging import DEFAULT_LIMIT, MAX_LIMIT, NEXT_MARKER_HEADER, BadMarker, decode_marker, encode_marker

T = TypeVar("T")


class Page:
    """``limit`` and ``marker`` of a list request (a FastAPI dependency)."""

    def __init__(self, limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="items per page"),
                 marker: str | None = Query(default=None, description=f"the previous page's {NEXT_MARKER_HEADER}")):
        self.limit, self.marker = limit, marker

    def after(self, kind: str, types: tuple[type, ...]) -> list[Any] | None:
        """The previous page's last sort key (None on the first page); 422 naming ``marker``
        when the marker is not one of this list's."""
        if not self.marker:
            return None
        try:
            return decode_marker(kind, self.marker, types)
        except BadMarker as exc:
            raise RequestValidationError([{"loc": ("query", "marker"), "msg": str(exc), "type": "value_error"}]) from None

    def answer(self, response: Response, kind: str, rows: list[T], key: Callable[[T], Sequence[Any]]) -> list[T]:
        """``rows`` were fetched with ``limit + 1``: keep ``limit`` of them and, when there
        was one more, set the next page's marker."""
        if len(rows) > self.limit:
            rows = rows[:self.limit]
            response.headers[NEXT_MARKER_HEADER] = encode_marker(kind, key(rows[-1]))
        return rows
