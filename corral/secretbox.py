"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) encryption of the store's secret columns.

The key is the control plane's, configured once per process (``configure``, called when
a ``ControlPlane`` is built from its ``Settings``): ``CORRAL_SECRET_KEY`` (a Fernet key:
32 url-safe base64-encoded bytes, as ``Fernet.generate_key()`` prints) or else the file
``<CORRAL_HOME>/secret.key``, generated with mode 0600 on first use. A process that opens
the store without configuring (a script, a test) gets the same rule from its environment
on first use.

A stored ciphertext is ``enc:v1:<Fernet token>``; the version names the scheme, so
another can follow without guessing. Values without the prefix are legacy plaintext,
written before secrets were encrypted: they are read as they are, and written encrypted
the next time (``corral.store.sealing`` rewrites them all when the control plane starts).

The column types ``EncryptedText`` and ``EncryptedJSON`` apply this to the ORM: Python
code sees plaintext, the database only ciphertext. The agent never imports this module:
agents receive secrets in their plan, never the key.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

PREFIX = "enc:v1:"
KEY_ENV = "CORRAL_SECRET_KEY"
KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The configured key is unusable (not a Fernet key, an unreadable or too open key
    file), or a stored secret was encrypted with another key."""


@dataclass(frozen=True)
class _Box:
    fernet: Fernet
    source: str  # where the key came from, for error messages (never the key itself)


_box: _Box | None = None


def key_file(home: Path) -> Path:
    return home / KEY_FILE


def _load_key_file(path: Path) -> bytes:
    """The key in ``path``, generating it (0600, created exclusively) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by a concurrent process: read it
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # As ssh does with private keys: a key others can read protects nothing.
        raise SecretKeyError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                             f"run `chmod 600 {path}`")
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc.strerror or exc}") from None


def configure(home: Path, env_key: str | None = None) -> str:
    """Set the process's key: ``env_key`` (the value of ``CORRAL_SECRET_KEY``) when given,
    else ``<home>/secret.key`` (created 0600 when missing). Returns where the key came
    from. Raises ``SecretKeyError`` naming ``CORRAL_SECRET_KEY`` or the file when the key is
    not a Fernet key."""
    global _box
    if env_key:
        raw, source = env_key.strip().encode(), KEY_ENV
    else:
        path = key_file(home)
        raw, source = _load_key_file(path), str(path)
    try:
        fernet = Fernet(raw)
    except (ValueError, TypeError):
        hint = "generate one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        raise SecretKeyError(f"{source} is not a valid key (32 url-safe base64-encoded bytes); {hint}") from None
    _box = _Box(fernet, source)
    return source


def _current() -> _Box:
    box = _box
    if box is None:  # a process that opened the store without configuring: the same rule, from its environment
        from corral.settings import Settings  # noqa: PLC0415 - settings need not load for configured processes

        settings = Settings.from_env()
        configure(settings.home, settings.secret_key)
        box = _box
    assert box is not None
    return box


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def encrypt(plaintext: str) -> str:
    """``enc:v1:<Fernet token>`` of ``plaintext`` (a new random IV each time)."""
    return PREFIX + _current().fernet.encrypt(plaintext.encode()).decode("ascii")


def decrypt(value: str) -> str:
    """The plaintext of ``value``; a value without the prefix is legacy plaintext and is
    returned unchanged. Raises ``SecretKeyError`` when the key is not the one it was
    encrypted with (or the ciphertext was altered)."""
    if not is_encrypted(value):
        return value
    box = _current()
    try:
        return box.fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise SecretKeyError(f"cannot decrypt a stored secret with the key from {box.source}: it was encrypted "
                             f"with another key (set {KEY_ENV} or restore the home's {KEY_FILE})") from None


class EncryptedText(TypeDecorator[str]):
    """A string column stored encrypted (``TEXT``: a ciphertext is longer than its plaintext)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON column whose value is stored as one encrypted JSON string. Reading a legacy
    row, whose column still holds the plain JSON value (a dict), returns that value, so
    existing stores need no data migration."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else encrypt(json.dumps(value, separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and is_encrypted(value):
            return json.loads(decrypt(value))
        return value
