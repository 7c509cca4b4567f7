"""Secrets (object-store keys, database passwords) travel as placeholders.

Services and step kinds write ``{{secret:NAME}}`` where a secret belongs (a config file, an
environment variable; never a command line). Only the plan handed to a node's agent has
them filled in (``corral.control.plans.with_secrets``), escaped for the file they are in;
user-given text may not contain ``{{secret:`` (``corral.formats.placeholder_problem``). The API,
``describe --configs``, events and logs see the placeholder or ``********``. The values
live in the cluster's (or step's) ``secrets`` column, which no API response includes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from corral.domain.spec import ClusterSpec

MASK = "********"
SECRET_MARK = "{{secret:"
_PLACEHOLDER = re.compile(r"\{\{secret:([A-Za-z0-9_.:\-]+)\}\}")
# Property names whose values are secrets even when a user types them into a configuration.
_SENSITIVE_NAME = re.compile(r"(?i)(password|passwd|secret|credential|token|private[._-]?key)")

OBJECT_STORAGE_SECRET_KEY = "object_storage.secret_key"
METASTORE_PASSWORD = "metastore.password"


def placeholder(name: str) -> str:
    return "{{secret:" + name + "}}"


def expand(text: str, secrets: dict[str, str], escape: Callable[[str], str] = str) -> str:
    """Fill placeholders in, each value as ``escape`` writes it (a file format's escaping);
    an unknown name is an error, never an empty secret."""
    def value(match: re.Match[str]) -> str:
        try:
            return escape(secrets[match.group(1)])
        except KeyError:
            raise KeyError(f"secret {match.group(1)!r} is not set") from None

    return _PLACEHOLDER.sub(value, text)


def mask(text: str) -> str:
    return _PLACEHOLDER.sub(MASK, text)


def is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def masked_properties(props: dict[str, str]) -> dict[str, str]:
    """Properties as shown to people: sensitive names and placeholders masked."""
    return {k: (MASK if is_sensitive(k) and v else mask(v)) for k, v in props.items()}


def step_secret_name(step_id: str, env_name: str) -> str:
    return f"{step_id}:{env_name}"


def spec_secrets(spec: "ClusterSpec") -> dict[str, str]:
    """The secrets a cluster spec carries, by placeholder name."""
    found: dict[str, str] = {}
    if spec.object_storage is not None:
        found[OBJECT_STORAGE_SECRET_KEY] = spec.object_storage.secret_key.get_secret_value()
    if spec.metastore is not None:
        found[METASTORE_PASSWORD] = spec.metastore.password.get_secret_value()
    return found


def scrub(text: str, secrets: Any) -> str:
    """``text`` with every secret value in it replaced: for messages that may quote a
    command line or a server's error (a JDBC driver repeating its URL, say)."""
    values = secrets.values() if isinstance(secrets, dict) else secrets
    for value in sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
