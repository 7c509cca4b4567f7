"""``corral server start|stop|status``: the local control plane in the background."""

from __future__ import annotations

import typer

from corral.cli.outcome import ExitCode
from corral.cli.render import Output, console, print_json
from corral.server import healthy, running_server, start_background, stop_background
from corral.settings import Settings

app = typer.Typer(help="Run the control plane in the background.", no_args_is_help=True)


@app.command()
def start() -> None:
    """Start the server (no-op when it already runs). Clusters of the Corral home re-attach."""
    settings = Settings.from_env()
    info = start_background(settings)
    console.print(f"Corral server running (pid {info.pid}) at {info.url}; home {settings.home}")


@app.command()
def stop() -> None:
    """Stop the server. Clusters keep running; their agents re-attach at the next start."""
    stopped = stop_background(Settings.from_env())
    console.print("Corral server stopped" if stopped else "Corral server was not running")


@app.command()
def status(output: Output = typer.Option(Output.table, "--output", "-o")) -> None:
    """Whether the server runs, where, and with which home."""
    settings = Settings.from_env()
    info = running_server(settings)
    up = info is not None and healthy(info.url)
    data = {"running": up, "pid": info.pid if info else None, "url": settings.api_url, "home": str(settings.home),
            "database": settings.database_url.split("@")[-1],  # never print credentials of the URL
            "auth": settings.auth_mode}
    if output is Output.json:
        print_json(data)
    elif up:
        console.print(f"running (pid {data['pid']}) at {data['url']}; home {data['home']}")
    else:
        console.print(f"not running; home {data['home']}")
    if not up:
        raise typer.Exit(ExitCode.NOT_RUNNING)
