"""The CLI's saved tokens: ``~/.config/corral/credentials.json`` (``$XDG_CONFIG_HOME``
when set), mode 0600, one token per server URL, written by ``corral login``.

Shape: ``{"servers": {"http://host:7420": {"token": "crl_..."}}}``. ``CORRAL_TOKEN``, when
set, wins over a saved token (``token_for``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TOKEN_ENV = "CORRAL_TOKEN"


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "corral" / "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def _load() -> dict[str, Any]:
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError):
        return {"servers": {}}
    return data if isinstance(data, dict) and isinstance(data.get("servers"), dict) else {"servers": {}}


def _save(data: dict[str, Any]) -> None:
    """Replace the file atomically; it is created 0600 (in a 0700 directory) before a byte is written."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".credentials.", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def saved_token(url: str) -> str | None:
    entry = _load()["servers"].get(_key(url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def token_for(url: str) -> str | None:
    """The token the CLI sends to ``url``: ``CORRAL_TOKEN``, else the one saved for it."""
    return os.environ.get(TOKEN_ENV) or saved_token(url)


def save_token(url: str, token: str) -> Path:
    data = _load()
    data["servers"][_key(url)] = {"token": token}
    _save(data)
    return path()


def forget_token(url: str) -> bool:
    """Remove the token saved for ``url``; whether there was one."""
    data = _load()
    if data["servers"].pop(_key(url), None) is None:
        return False
    _save(data)
    return True
