"""Resource identifiers: a prefix and 8 lowercase base32 characters (``c-3kq9x2ab``)."""

from __future__ import annotations

import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def new_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def cluster_id() -> str:
    return new_id("c")


def step_id() -> str:
    return new_id("s")


def node_id() -> str:
    return new_id("n")


def group_id() -> str:
    return new_id("g")


def operation_id() -> str:
    return new_id("op")


def host_id() -> str:
    return new_id("h")
