"""``corral login`` / ``corral logout``: save (or forget) a token for a server's URL
(``corral.cli.credentials``), checked against the server first (``GET /api/v1/whoami``)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from corral.cli import credentials
from corral.cli.client import Client, server_url
from corral.cli.render import console
from corral.settings import Settings

UrlOpt = typer.Option(None, "--url", help="The server's URL (default: CORRAL_URL, else the local server's).")


def _url(url: str | None) -> str:
    return (url or server_url(Settings.from_env())).rstrip("/")


def login(url: Optional[str] = UrlOpt,
          token_stdin: bool = typer.Option(False, "--token-stdin", help="Read the token from standard input.")) -> None:
    """Check a token against the server and save it (0600) for that URL."""
    target = _url(url)
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = typer.prompt(f"Token for {target}", hide_input=True, prompt_suffix=": ").strip()
    if not token:
        raise typer.BadParameter("no token given", param_hint="token")
    me = Client(autostart=False, token=token, url=target).get("/whoami")  # 401: exit 2, the token is not saved
    if me.get("auth") == "off":
        raise typer.BadParameter(f"the server at {target} runs without authentication (CORRAL_AUTH=off, loopback "
                                 "only): it needs no token; nothing saved", param_hint="--url")
    saved = credentials.save_token(target, token)
    console.print(f"Logged in to {target} as {me['name']} ({me['role']}); token saved in {saved}", markup=False)


def logout(url: Optional[str] = UrlOpt) -> None:
    """Forget the token saved for the server's URL."""
    target = _url(url)
    forgotten = credentials.forget_token(target)
    console.print(f"Logged out of {target}" if forgotten else f"No token was saved for {target}", markup=False)
