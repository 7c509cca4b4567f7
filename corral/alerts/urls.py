"""Webhook URLs: the check of one a user gives, and the form shown to people.

A receiver's URL often is its credential: a token in the query (``?token=...``), in the
userinfo (``https://user:secret@host``), or in the path (Slack's and Discord's
``/services/T0/B0/XXXX``, ``/api/webhooks/ID/TOKEN``). The stored URL is used only to
send; lists, logs and recorded errors show ``masked`` forms: scheme, host and port, the
first path segment, and ``***`` for userinfo, the rest of the path and the query.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL = 2000
MASK = "***"


def check_url(url: str) -> str:
    """The URL itself when it is an absolute ``http``/``https`` URL with a host and no
    fragment; ValueError saying what is wrong (never repeating the URL: it may hold a secret)."""
    text = (url or "").strip()
    if not text or len(text) > MAX_URL:
        raise ValueError(f"must be an http or https URL of at most {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("must not contain blanks or control characters")
    try:
        parts = urlsplit(text)
        _ = parts.port  # ValueError for a port that is no number or out of range
    except ValueError:
        raise ValueError("is not a valid URL (its port?)") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return text


def masked(url: str) -> str:
    """``https://***@hooks.example.com/***?***`` for
    ``https://u:p@hooks.example.com/services/T0/B0/XXXX?token=abc``: no part of the path
    either, since services put their tokens anywhere in it (Slack's last segments,
    Telegram's ``/bot<token>/``, ntfy's topic as the first)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + host + (f":{port}" if port is not None else "")
    path = "/" + MASK if parts.path.strip("/") else parts.path
    return f"{parts.scheme}://{netloc}{path}" + (f"?{MASK}" if parts.query else "")


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) with the URL, and its secret parts, replaced by ``masked``."""
    out = text.replace(url, masked(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    secrets = [parts.query, parts.password or "", parts.path, *parts.path.split("/")]
    for secret in sorted(secrets, key=len, reverse=True):  # the longest first: a segment is in the path
        if len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out
