"""Reading every page of the API's paged answers (the scheme: ``corral.paging``).

Works with the CLI's ``Client`` and with a plain ``httpx.Client`` whose base URL is the API's
(the benchmarks and tests use those): both have ``request(method, path, params=...)``.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Protocol, Sequence

import httpx

from corral.domain.states import StepState
from corral.paging import MAX_LIMIT, NEXT_MARKER_HEADER, NEXT_OFFSET_HEADER, STEP_STATE_HEADER

Params = Sequence[tuple[str, str | int]]
FINAL_STEP_STATES = frozenset(s.value for s in StepState if s.is_terminal())


class Requester(Protocol):
    def request(self, method: str, url: str, /, *, params: Any = ...) -> httpx.Response: ...


def _get(http: Requester, path: str, params: Params) -> httpx.Response:
    resp = http.request("GET", path, params=list(params))
    resp.raise_for_status()  # the CLI's Client has already raised ApiError for a 4xx
    return resp


def list_all(http: Requester, path: str, params: Params = (), key: str | None = None,
             page_size: int = MAX_LIMIT) -> list[Any]:
    """Every item of a paged list, in the list's order: pages are fetched while the answer
    names a next marker. ``key`` picks the list out of an object body (``"steps"``).
    Raises ``httpx.HTTPStatusError`` (or the Client's ``ApiError``) for an error answer."""
    items: list[Any] = []
    marker: str | None = None
    while True:
        query = [*params, ("limit", page_size), *([("marker", marker)] if marker else [])]
        resp = _get(http, path, query)
        body = resp.json()
        items.extend(body[key] if key is not None else body)
        marker = resp.headers.get(NEXT_MARKER_HEADER)
        if not marker:
            return items


def log_pages(http: Requester, path: str, follow: bool = False, poll: float = 0.5) -> Iterator[bytes]:
    """The bytes of a step log (``.../logs/stdout``), page by page from its start. Without
    ``follow``, up to the end of what is stored now (the first empty page); with it, until
    the step has ended and no bytes remain (an agent ships a step's logs before it reports
    the step ended, so nothing comes after that)."""
    offset = 0
    while True:
        resp = _get(http, path, [("offset", offset)])
        offset = int(resp.headers[NEXT_OFFSET_HEADER])
        if resp.content:
            yield resp.content
            continue
        if not follow or resp.headers.get(STEP_STATE_HEADER) in FINAL_STEP_STATES:
            return
        time.sleep(poll)


def read_log(http: Requester, path: str) -> bytes:
    """A step log's whole stored content (every page)."""
    return b"".join(log_pages(http, path))
