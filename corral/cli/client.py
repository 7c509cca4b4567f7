"""The CLI's HTTP client. Starts a local server in the background when none answers."""

from __future__ import annotations

import os
from typing import Any

import httpx

from corral.errors import format_loc
from corral.server import healthy, start_background
from corral.settings import Settings


class ApiError(Exception):
    """A 4xx answer: bad input (the CLI exits with code 2)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def describe_error(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        return resp.text.strip() or f"HTTP {resp.status_code}"
    if isinstance(detail, list):  # validation errors: name the field at fault
        parts = []
        for item in detail:
            loc = [p for p in item.get("loc", []) if p != "body"]
            msg = str(item.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{format_loc(loc)}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(detail)


class Client:
    def __init__(self, settings: Settings | None = None, autostart: bool = True):
        self.settings = settings or Settings.from_env()
        self.url = os.environ.get("CORRAL_URL", self.settings.api_url).rstrip("/")
        if autostart and "CORRAL_URL" not in os.environ and not healthy(self.url):
            start_background(self.settings)
        self._http = httpx.Client(base_url=self.url + "/api/v1", timeout=60.0)

    @property
    def http(self) -> httpx.Client:
        """The raw client of the API root (``.../api/v1``), for ``corral.cli.ship``."""
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        resp = self._http.request(method, path, **kwargs)
        if 400 <= resp.status_code < 500:
            raise ApiError(resp.status_code, describe_error(resp))
        resp.raise_for_status()
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json).json()
