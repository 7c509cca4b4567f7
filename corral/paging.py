"""The public API's paging scheme, shared by the server (``corral.api.paging``) and its
clients (``corral.cli.paging``).

Lists that can grow without bound (``GET /clusters``, ``/clusters/{id}/steps``,
``/clusters/{id}/events``) answer at most ``limit`` items (1..10000, default 1000) in a
fixed order. When more remain, the response carries ``X-Corral-Next-Marker: TOKEN``; the
next page is the same request with ``marker=TOKEN``; the last page has no such header.
The body has the same shape with or without paging, so a client that ignores the header
reads the first page: the whole list up to 1000 items, as before lists were paged. Pages
are keyset pages (the token holds the last item's sort key; opaque, as EMR's ``Marker``):
items added while a client pages never shift or repeat the later pages.

Step logs are a byte stream and page by byte: ``offset`` and ``limit`` (bytes, default
1 MiB), ``X-Corral-Next-Offset`` in every answer; a reader is at the end (of what is stored
so far) when a page is empty.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Sequence

NEXT_MARKER_HEADER = "X-Corral-Next-Marker"
NEXT_OFFSET_HEADER = "X-Corral-Next-Offset"
STEP_STATE_HEADER = "X-Corral-Step-State"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000


class BadMarker(ValueError):
    pass


def encode_marker(kind: str, key: Sequence[Any]) -> str:
    """An opaque token for "after the item whose sort key is ``key``" in list ``kind``."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_marker(kind: str, marker: str, types: tuple[type, ...]) -> list[Any]:
    """The sort key inside ``marker``, one value of each of ``types``. Raises ``BadMarker``
    when it is not a token of list ``kind`` (a token of another list, or changed by hand)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if (not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(data[1:], types))):
        raise BadMarker(f"not a marker of this list ({kind}): use the {NEXT_MARKER_HEADER} header of the previous page")
    return data[1:]
