"""Process-wide settings, read once from the environment.

Everything Corral writes lives under one home directory (``CORRAL_HOME``, default
``~/.corral``): the SQLite database, the server's pid and log, step logs, artifacts,
node directories of the local provider. Release runtimes are cached host-wide (see
``runtime_dir``).

Authentication (``CORRAL_AUTH``): ``required`` (bearer tokens on every ``/api/v1`` call,
``corral.api.access``) or ``off``. Unset, it is ``off`` on a loopback ``CORRAL_HOST``
(the local quickstart needs no token) and ``required`` on any other address; the server
refuses ``off`` on a non-loopback address (``corral.server``). Secrets in the store are
encrypted with ``CORRAL_SECRET_KEY`` or the home's ``secret.key`` (``corral.secretbox``).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_PORT = 7420
# Uploaded step files and bootstrap scripts (CORRAL_MAX_ARTIFACT_MB): big enough for fat
# jars and packed Python environments, small enough that a mistake does not fill the disk.
DEFAULT_MAX_ARTIFACT_MB = 2048
AUTH_MODES = ("required", "off")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes the server to this machine only: a loopback IP
    address (127.0.0.0/8, ::1) or ``localhost``. Any other name or address (0.0.0.0, a
    LAN address, a host name) may be reachable from other machines."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_advertise_url(given: str | None, host: str, port: int) -> str | None:
    """CORRAL_ADVERTISE_URL (``http(s)://host[:port]``, no trailing slash), else
    ``http://CORRAL_HOST:CORRAL_PORT`` unless that host is a wildcard address."""
    if given:
        parsed = urlparse(given.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError(f"CORRAL_ADVERTISE_URL must be http(s)://HOST[:PORT], got {given!r}")
        return given.strip().rstrip("/")
    if host in ("", "0.0.0.0", "::", "[::]"):
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    host: str
    port: int
    local_subnet: ipaddress.IPv4Network
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_MB << 20
    auth: str | None = None  # "required", "off", or None: by the address (``auth_mode``)
    secret_key: str | None = field(default=None, repr=False)  # CORRAL_SECRET_KEY; None: the home's key file
    # The URL hosts reach the control plane at (CORRAL_ADVERTISE_URL); None when it listens
    # on all addresses and none was given (no address of "0.0.0.0" is one a host can use).
    advertise_url: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("CORRAL_HOME") or Path.home() / ".corral").expanduser().resolve()
        db_url = os.environ.get("CORRAL_DATABASE_URL") or f"sqlite:///{home / 'corral.db'}"
        subnet = ipaddress.IPv4Network(os.environ.get("CORRAL_LOCAL_SUBNET", "127.42.0.0/16"))
        if not subnet.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"CORRAL_LOCAL_SUBNET must be inside 127.0.0.0/8, got {subnet}")
        auth = os.environ.get("CORRAL_AUTH", "").strip().lower() or None
        if auth is not None and auth not in AUTH_MODES:
            raise ValueError(f"CORRAL_AUTH must be 'required' or 'off', got {os.environ['CORRAL_AUTH']!r}")
        return cls(
            home=home,
            database_url=db_url,
            host=os.environ.get("CORRAL_HOST", "127.0.0.1"),
            port=int(os.environ.get("CORRAL_PORT", DEFAULT_PORT)),
            local_subnet=subnet,
            max_artifact_bytes=int(os.environ.get("CORRAL_MAX_ARTIFACT_MB", DEFAULT_MAX_ARTIFACT_MB)) << 20,
            auth=auth,
            secret_key=os.environ.get("CORRAL_SECRET_KEY") or None,
            advertise_url=resolve_advertise_url(os.environ.get("CORRAL_ADVERTISE_URL"),
                                                os.environ.get("CORRAL_HOST", "127.0.0.1"),
                                                int(os.environ.get("CORRAL_PORT", DEFAULT_PORT))),
        )

    @property
    def auth_mode(self) -> str:
        """``required`` or ``off``: ``CORRAL_AUTH``, else by whether ``host`` is loopback."""
        if self.auth is not None:
            return self.auth
        return "off" if is_loopback(self.host) else "required"

    @property
    def auth_required(self) -> bool:
        return self.auth_mode == "required"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def agent_url(self) -> str:
        """Where agents reach the control plane: the advertised URL, else ``api_url`` (the
        local provider's agents run on this machine, where a wildcard address works)."""
        return self.advertise_url or self.api_url

    @cached_property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @cached_property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @cached_property
    def nodes_dir(self) -> Path:
        return self.home / "nodes"

    @cached_property
    def runtime_dir(self) -> Path:
        """Release runtimes (pyspark, Hadoop jars) are the same for every Corral home on
        the host, so they live in one host-wide cache (``CORRAL_RUNTIME_CACHE``)."""
        from corral.runtime.hadoop import default_cache  # noqa: PLC0415 - settings stay import-light

        return default_cache()

    def ensure_dirs(self) -> None:
        for d in (self.home, self.logs_dir, self.artifacts_dir, self.nodes_dir, self.runtime_dir):
            d.mkdir(parents=True, exist_ok=True)
