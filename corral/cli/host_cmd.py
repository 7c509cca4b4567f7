"""``corral host add|list|describe|check|drain|remove``: the hosts the ssh provider runs
nodes on. ``add`` and ``check`` wait for the host check (``--no-wait`` returns at once)
and print its items; the exit status follows ``corral.cli.outcome.host_checked``."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import typer
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.text import Text

from corral.cli.client import Client
from corral.cli.outcome import finish, host_checked
from corral.cli.paging import list_all
from corral.cli.render import Output, console, print_json, styled, table, when
from corral.hosts.spec import parse_labels

app = typer.Typer(help="Register and check the hosts clusters run on (the ssh provider).", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")
HOST_STYLE = {"READY": "green", "CHECKING": "yellow", "ALLOCATED": "cyan", "DRAINING": "magenta", "DRAINED": "dim",
              "REMOVED": "dim", "FAILED_CHECK": "red", "UNREACHABLE": "red", "HOST_KEY_CHANGED": "red"}
MARK = {"ok": "[green]✓[/green]", "warning": "[yellow]![/yellow]", "error": "[red]✗[/red]"}


def host_state(status: str) -> str:
    style = HOST_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else styled(status)


def _read_key(path: Path) -> str:
    """The key file's text, read here on the client (the server may be elsewhere)."""
    try:
        return path.expanduser().read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                                 param_hint="--key") from None


def wait_check(client: Client, name: str, show: bool) -> dict[str, Any]:
    """Poll the host until its check is no longer pending, showing a spinner."""
    started = time.monotonic()
    with Live(console=console, refresh_per_second=8, transient=True) if show else nullcontext() as live:
        while True:
            host = client.get(f"/hosts/{name}")
            if not host["check_pending"]:
                return host
            if live is not None:
                line = Text.from_markup(f" host [bold]{escape(host['name'])}[/bold] {host_state(host['status'])}"
                                        f"  {time.monotonic() - started:.1f}s  [dim]{escape(host['status_reason'] or '')}[/dim]")
                live.update(Spinner("dots", line), refresh=True)
            time.sleep(0.5)


def _item_lines(host: dict[str, Any], only_failed: bool = False) -> None:
    for item in host["checks"]:
        level = "ok" if item["ok"] else item["severity"]
        if only_failed and level == "ok":
            continue
        console.print(f"  {MARK.get(level, '?')} ", end="")
        console.print(item["message"], markup=False, highlight=False)


def _print_outcome(host: dict[str, Any]) -> None:
    explained = any(not c["ok"] and c["severity"] == "error" for c in host["checks"])
    said = host["status_reason"] if host["status"] != "READY" and not explained else None
    console.print(f"Host [bold]{escape(host['name'])}[/bold] ({escape(host['address'])}) is {host_state(host['status'])}"
                  + (f": {escape(said)}" if said else ""))
    if host["check_pending"]:
        console.print(f"  the check runs in the background; follow it with `corral host describe {host['name']}`")
    _item_lines(host)
    if host["status"] == "READY":
        console.print(f"  {host['cores']} cores, {host['memory_mb']} MiB usable by a node")


@app.command()
def add(
    address: str = typer.Argument(..., help="Host name or IP address to connect to."),
    name: Optional[str] = typer.Option(None, "--name", help="Name in Corral (default: the address)."),
    user: str = typer.Option("root", "--user", help="Login user."),
    port: int = typer.Option(22, "--port", help="SSH port."),
    key: Optional[Path] = typer.Option(None, "--key", help="Private key file (read here; default: the server's ~/.ssh keys)."),
    label: list[str] = typer.Option([], "--label", help="KEY=VALUE, repeatable."),
    fingerprint: Optional[str] = typer.Option(None, "--host-key-fingerprint",
                                              help="SHA256:... of the host key to pin (default: the first key seen)."),
    cores: Optional[int] = typer.Option(None, "--cores", help="Cores a node may use (overrides the check)."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Memory a node may use: 4g, 4096m (overrides the check)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the host is registered."),
    output: Output = OutputOpt,
) -> None:
    """Register a host: pin its SSH host key, check it, and show what it lacks."""
    try:
        labels = parse_labels(label)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--label") from None
    body: dict[str, Any] = {"address": address, "user": user, "port": port, "labels": labels}
    for field, value in (("name", name), ("host_key_fingerprint", fingerprint), ("cores", cores), ("memory", memory)):
        if value is not None:
            body[field] = value
    if key is not None:
        body["private_key"] = _read_key(key)
    client = Client()
    host = client.post("/hosts", json=body)
    if not no_wait:
        host = wait_check(client, host["id"], show=output is Output.table)
    finish(host, output, lambda: _print_outcome(host), ok=host_checked(host, waited=not no_wait))


@app.command()
def check(name: str, no_wait: bool = typer.Option(False, "--no-wait", help="Return once the check is requested."),
          output: Output = OutputOpt) -> None:
    """Check a host again (an allocated host keeps its node: only its facts are refreshed)."""
    client = Client()
    host = client.post(f"/hosts/{name}/check")
    if not no_wait:
        host = wait_check(client, host["id"], show=output is Output.table)
    finish(host, output, lambda: _print_outcome(host), ok=host_checked(host, waited=not no_wait))


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include removed hosts."), output: Output = OutputOpt) -> None:
    """List registered hosts."""
    hosts = list_all(Client(), "/hosts", [("all", "true")] if all_ else [])
    if output is Output.json:
        print_json(hosts)
        return
    t = table("name", "address", "status", "cores", "memory", "labels", "node", "checked")
    for h in hosts:
        labels = ",".join(f"{k}={v}" for k, v in sorted(h["labels"].items()))
        node = f"{h['node_id']} ({h['cluster_id']})" if h["node_id"] else "-"
        memory = f"{h['memory_mb']} MiB" if h["memory_mb"] is not None else "-"
        address = escape(h["address"]) + (f":{h['port']}" if h["port"] != 22 else "")
        t.add_row(escape(h["name"]), address, host_state(h["status"]),
                  str(h["cores"] if h["cores"] is not None else "-"), memory, escape(labels) or "-", node,
                  when(h["checked_at"]))
    console.print(t)


@app.command()
def describe(name: str, output: Output = OutputOpt) -> None:
    """Show a host: state and reason, pinned key, resources, check items, facts."""
    host = Client().get(f"/hosts/{name}")
    if output is Output.json:
        print_json(host)
        return
    h = host
    console.print(f"[bold]{escape(h['name'])}[/bold] {h['id']}  {escape(h['user'])}@{escape(h['address'])}:{h['port']}  "
                  f"{host_state(h['status'])} (target {h['target']})")
    console.print("  reason: ", end="")
    console.print(h["status_reason"] or "-", markup=False, highlight=False)
    console.print(f"  host key: {h['host_key_fingerprint'] or 'not pinned yet'}  private key: "
                  f"{'given' if h['has_private_key'] else 'the server’s ~/.ssh keys'}")
    cores = f"{h['cores']}" + (" (override)" if h["cores_override"] is not None else "")
    memory = f"{h['memory_mb']} MiB" + (" (override)" if h["memory_mb_override"] is not None else "")
    console.print(f"  cores {cores}  memory {memory}  labels "
                  + (escape(", ".join(f"{k}={v}" for k, v in sorted(h["labels"].items()))) or "-"))
    if h["node_id"]:
        console.print(f"  runs node {h['node_id']} of cluster {h['cluster_id']}")
    console.print(f"  added {when(h['created_at'])}  checked {when(h['checked_at'])}  seen {when(h['last_seen_at'])}"
                  + (f"  removed {when(h['removed_at'])}" if h["removed_at"] else ""))
    facts = h["facts"]
    if facts.get("os"):
        py, java = facts.get("python") or {}, facts.get("java") or {}
        console.print(f"  {escape((facts['os'] or {}).get('pretty_name') or '?')}, kernel "
                      f"{escape((facts.get('kernel') or {}).get('release') or '?')}; python "
                      f"{escape(py.get('version') or '-')}; java {escape(str(java.get('version') or '-'))}")
    _item_lines(h)


@app.command()
def drain(name: str, output: Output = OutputOpt) -> None:
    """Take a host out of selection for new nodes (a node on it keeps running)."""
    host = Client().post(f"/hosts/{name}/drain")

    def show() -> None:
        console.print(f"Host [bold]{escape(host['name'])}[/bold] is {host_state(host['status'])}"
                      + (f": {escape(host['status_reason'])}" if host["status_reason"] else ""))

    finish(host, output, show, ok=True)


@app.command()
def remove(name: str,
           force: bool = typer.Option(False, "--force", help=(
               "Also remove a host still reserved by a node whose cluster has ended (a host that never came back "
               "to be cleaned); says what may be left on it. Never while the node's cluster runs.")),
           output: Output = OutputOpt) -> None:
    """Remove a host (refused while a node holds it); its name is free again."""
    host = Client().request("DELETE", f"/hosts/{name}", params={"force": "true"} if force else None).json()

    def show() -> None:
        console.print(f"Host [bold]{escape(host['name'])}[/bold] removed")
        if force and host["status_reason"] and host["status_reason"].startswith("removed by force"):
            console.print(f"  {host['status_reason']}", markup=False, highlight=False)

    finish(host, output, show, ok=True)
