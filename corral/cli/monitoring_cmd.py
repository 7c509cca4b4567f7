"""``corral monitoring prometheus-config``: a Prometheus scrape configuration for this
control plane: its own ``/metrics`` (with the node metrics agents report), and every
running cluster's daemons through the service-discovery endpoint
(``GET /api/v1/monitoring/targets``)."""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlparse

import typer
import yaml

from corral.cli.client import Client

app = typer.Typer(help="Fit Corral into a Prometheus set-up.", no_args_is_help=True)


def scrape_config(url: str, token: str | None, credentials_file: str | None = None,
                  interval: str = "15s", refresh: str = "30s") -> dict[str, Any]:
    """The ``scrape_configs`` document for the control plane at ``url``. The token (or the
    file holding it) authorizes the control plane's own job and the discovery requests
    only: the daemons' endpoints are scraped without it, so it is never sent to a node."""
    parsed = urlparse(url)
    auth: dict[str, Any] = {}
    if credentials_file:
        auth = {"authorization": {"type": "Bearer", "credentials_file": credentials_file}}
    elif token:
        auth = {"authorization": {"type": "Bearer", "credentials": token}}
    plane: dict[str, Any] = {"job_name": "corral-control-plane", "scrape_interval": interval, "metrics_path": "/metrics",
                             "scheme": parsed.scheme, "static_configs": [{"targets": [parsed.netloc]}], **auth}
    clusters = {"job_name": "corral-clusters", "scrape_interval": interval,
                "http_sd_configs": [{"url": f"{url}/api/v1/monitoring/targets", "refresh_interval": refresh, **auth}]}
    return {"scrape_configs": [plane, clusters]}


@app.command("prometheus-config")
def prometheus_config(
        credentials_file: Optional[str] = typer.Option(
            None, "--credentials-file", help="Have Prometheus read the token from this file instead of "
                                             "writing the token itself into the configuration."),
        interval: str = typer.Option("15s", "--scrape-interval", help="Prometheus' scrape_interval for both jobs."),
        refresh: str = typer.Option("30s", "--discovery-refresh", help="How often Prometheus asks for the targets.")) -> None:
    """Print a ready scrape configuration (YAML) for Prometheus' prometheus.yml. With auth on
    it carries the token this CLI uses (a viewer's is enough), unless --credentials-file."""
    client = Client()
    client.get("/monitoring/targets")  # the server answers, and this token may read it
    for name, value in (("--scrape-interval", interval), ("--discovery-refresh", refresh)):
        if not re.fullmatch(r"\d+(ms|s|m|h)", value):
            raise typer.BadParameter(f"{value!r} is not a Prometheus duration (15s, 1m)", param_hint=name)
    document = scrape_config(client.url, client.token, credentials_file, interval, refresh)
    print(f"# Prometheus scrape configuration for the Corral control plane at {client.url}")
    if client.token and not credentials_file:
        print("# It carries this CLI's token: keep the file private (chmod 600), or make a viewer token for\n"
              "# Prometheus (corral token create --name prometheus --role viewer) and pass --credentials-file.")
    print(yaml.safe_dump(document, sort_keys=False), end="")
