"""``corral token create|list|revoke``: API tokens (``corral.control.tokens``).

With a token for the server (``CORRAL_TOKEN`` or ``corral login``) each command goes
through the API, as an admin's call. Without one it opens the control plane's store
directly (``CORRAL_HOME`` / ``CORRAL_DATABASE_URL``, migrated first), whether a server runs
or not: that is how the first admin token is made on the control plane's host. Such a
call is audited as actor ``local``.

A token's secret is printed once, by ``create`` (``-o json``: its ``token``); nothing else
prints it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import quote

import typer

from corral.cli import credentials
from corral.cli.client import Client, server_url
from corral.cli.render import Output, console, print_json, table, when
from corral.control.tokens import Role
from corral.errors import CorralError
from corral.settings import Settings

app = typer.Typer(help="Create, list and revoke API tokens (admin).", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")
LOCAL_ACTOR = "local"


def _api() -> Client | None:
    """The API client when the CLI has a token for the server, else None (use the store)."""
    settings = Settings.from_env()
    token = credentials.token_for(server_url(settings))
    return Client(settings, autostart=False, token=token) if token else None


@contextmanager
def _store(action: str | None = None, target: str | None = None, ok: int = 200) -> Iterator[Any]:
    """The control plane's store, migrated. A change (``action``, e.g. ``token.create``) is
    audited as actor ``local``, with the status code the API would answer (``ok`` or the
    error's), whether it succeeds or is refused."""
    from corral.control import audit  # noqa: PLC0415 - the API path needs none of the store's modules
    from corral.store.db import Store  # noqa: PLC0415

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    try:
        store.migrate()
        status = ok
        try:
            yield store
        except CorralError as exc:
            status = exc.status_code
            raise
        finally:
            if action:
                audit.record(store, audit.Entry(actor=LOCAL_ACTOR, role=Role.admin.value, method="CLI",
                                                path=f"corral {action.replace('.', ' ')}", action=action,
                                                target=target, status_code=status, remote=None))
    finally:
        store.dispose()


def _store_note() -> str:
    settings = Settings.from_env()
    return f"(on the store of {settings.home} directly: no token is configured for {server_url(settings)})"


def _view(row: Any) -> dict[str, Any]:
    from corral.api.routes_tokens import TokenOut  # noqa: PLC0415 - the API's shape, for the same JSON either way

    return TokenOut.of(row).model_dump(mode="json")


@app.command()
def create(name: str = typer.Option(..., "--name", help="Unique: letters, digits, '.', '_', '-' (at most 64)."),
           role: Role = typer.Option(..., "--role", help="admin, operator or viewer."),
           output: Output = OutputOpt) -> None:
    """Create a token; its secret is shown this once (keep it: only a hash is stored)."""
    client = _api()
    note = ""
    if client is not None:
        made = client.post("/tokens", json={"name": name, "role": role.value})
    else:
        from corral.control import tokens  # noqa: PLC0415

        with _store("token.create", name, ok=201) as store:
            row, secret = tokens.create_token(store, name, role.value, created_by=LOCAL_ACTOR)
        made, note = {**_view(row), "token": secret}, _store_note()
    if output is Output.json:
        print_json(made)
        return
    console.print(f"Token {made['name']} ({made['role']}) created {note}. Its secret, shown only now:".replace("  ", " "),
                  markup=False, highlight=False)
    print(made["token"])
    console.print("Pass it as CORRAL_TOKEN=<token>, or save it with `corral login`.", markup=False, highlight=False)


@app.command("list")
def list_(output: Output = OutputOpt) -> None:
    """List tokens (names, roles, times; never their secrets)."""
    client = _api()
    if client is not None:
        rows = client.get("/tokens")
    else:
        from corral.control import tokens  # noqa: PLC0415

        with _store() as store:
            rows = [_view(t) for t in tokens.list_tokens(store)]
    if output is Output.json:
        print_json(rows)
        return
    t = table("name", "role", "created", "created by", "last used", "revoked")
    for r in rows:
        t.add_row(r["name"], r["role"], when(r["created_at"]), r["created_by"] or "-", when(r["last_used_at"]),
                  when(r["revoked_at"]))
    console.print(t)


@app.command()
def revoke(name: str, output: Output = OutputOpt) -> None:
    """Revoke a token: requests with it are refused (401) from now on."""
    client = _api()
    if client is not None:
        row = client.delete(f"/tokens/{quote(name, safe='')}")
    else:
        from corral.control import tokens  # noqa: PLC0415

        with _store("token.revoke", name) as store:
            row = _view(tokens.revoke_token(store, name))
    if output is Output.json:
        print_json(row)
    else:
        console.print(f"Token {row['name']} revoked", markup=False)
