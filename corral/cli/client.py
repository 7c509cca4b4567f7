"""The CLI's HTTP client. Starts a local server in the background when none answers.

Every request carries ``Authorization: Bearer <token>`` when the CLI has a token for the
server: ``CORRAL_TOKEN``, else the one ``corral login`` saved for its URL
(``corral.cli.credentials``). A loopback server with auth off needs none.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from corral.cli import credentials
from corral.errors import format_loc
from corral.server import healthy, start_background
from corral.settings import Settings


class ApiError(Exception):
    """A 4xx answer: bad input, or no valid token or role for the call (the CLI exits with code 2)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def server_of(resp: httpx.Response) -> str:
    url = resp.request.url
    return f"{url.scheme}://{url.netloc.decode()}"


def auth_problem(resp: httpx.Response) -> str | None:
    """For a 401 or 403 answer, one line saying what was refused and how to pass a token
    (never the token); None for any other answer."""
    if resp.status_code not in (401, 403):
        return None
    server = server_of(resp)
    how = f"set {credentials.TOKEN_ENV}=<token> or run `corral login --url {server}`"
    if resp.status_code == 401:
        sent = "authorization" in resp.request.headers
        why = "the token sent is not valid (unknown or revoked)" if sent else "it requires a token and none was sent"
        return f"the Corral server at {server} refused the request: {why}; {how}"
    return f"{describe_error(resp)}; use a token with that role ({how})"


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


def server_url(settings: Settings) -> str:
    """The URL the CLI talks to: ``CORRAL_URL``, else the local server's."""
    return os.environ.get("CORRAL_URL", settings.api_url).rstrip("/")


class Client:
    def __init__(self, settings: Settings | None = None, autostart: bool = True, token: str | None = None,
                 url: str | None = None):
        """``url`` (default ``server_url``) and ``token`` (default ``credentials.token_for``
        the URL) name another server or token than the environment's."""
        self.settings = settings or Settings.from_env()
        self.url = url.rstrip("/") if url else server_url(self.settings)
        self.token = token or credentials.token_for(self.url)
        if autostart and "CORRAL_URL" not in os.environ and not healthy(self.url):
            start_background(self.settings)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url + "/api/v1", timeout=60.0, headers=headers)

    @property
    def http(self) -> httpx.Client:
        """The raw client of the API root (``.../api/v1``), for ``corral.cli.ship``."""
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        resp = self._http.request(method, path, **kwargs)
        if 400 <= resp.status_code < 500:
            raise ApiError(resp.status_code, auth_problem(resp) or describe_error(resp))
        resp.raise_for_status()
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json).json()

    def patch(self, path: str, json: Any = None) -> Any:
        return self.request("PATCH", path, json=json).json()

    def delete(self, path: str, params: Any = None) -> Any:
        return self.request("DELETE", path, params=params).json()
