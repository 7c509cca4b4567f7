"""Errors the control layer raises; the API and CLI turn them into 4xx / exit code 2."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence


def format_loc(loc: Sequence[str | int]) -> str:
    """('node_groups', 1, 'count') -> 'node_groups[1].count'. A name that is empty, has
    blanks at its ends or unprintable characters (a property name at fault, say) is shown
    quoted, as JSON: 'properties["a\\nb"]', so the location stays one readable line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and part.isprintable() and part == part.strip():
            out += ("." if out else "") + part
        else:
            out += f"[{json.dumps(part)}]"
    return out


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str

    def __str__(self) -> str:
        return f"{format_loc(self.loc)}: {self.msg}" if self.loc else self.msg


class CorralError(Exception):
    status_code = 400


class ValidationFailed(CorralError):
    """Bad input; nothing was created."""

    status_code = 422

    def __init__(self, errors: Sequence[FieldError], where: str = "body"):
        self.errors = list(errors)
        self.where = where  # the request part at fault, as FastAPI names it: body, query, path
        super().__init__("; ".join(str(e) for e in self.errors))


class NotFound(CorralError):
    status_code = 404

    def __init__(self, kind: str, ident: str):
        self.kind, self.ident = kind, ident
        super().__init__(f"{kind} {ident} not found")


class Conflict(CorralError):
    status_code = 409
