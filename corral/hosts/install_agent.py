"""Install the node agent on a host from the control plane's repository. Runs on the host
with its own Python 3.11 *before* Corral is there, so it uses the standard library only;
the ssh provider sends this file's text (``script()``) to ``python3.11 -`` with::

    --control-url URL    the control plane as the host reaches it
    --token-file PATH    a file holding an agent token of a cluster not yet terminated
                         (never on a command line, where ``ps`` would show it)
    --base DIR           ~/.corral-host (``corral.hosts.layout.base``)

It lists ``GET /agent/v1/repository/bundles/agent``, fetches each wheel it lacks into
``<base>/cache/wheels/<wheel name>`` (sha256 checked while it arrives, written under a
temporary name, retried), and builds ``<base>/agent/<digest[:16]>`` (``layout.agent_env``)
with ``python3.11 -m venv --without-pip`` and pip run from its shipped wheel, offline
(``--no-index``), once per bundle digest: the directory counts only once its
``.corral-complete`` marker is written, so a killed install is redone. Concurrent runs on
one host wait for each other (a file lock). It prints one JSON line: ``{"python": the
environment's interpreter, "digest", "fetched_bytes", "installed": whether it built the
environment now, "seconds"}``; on failure a message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ATTEMPTS = 3
MARKER = ".corral-complete"
_CHUNK = 1 << 20


def script() -> str:
    """This file's text, for ``python3.11 -`` on the host."""
    return Path(__file__).read_text()


class InstallError(Exception):
    pass


def _get(url: str, token: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - the control plane's URL


def _bundle(control_url: str, token: str, wait: float = 1800.0) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + wait
    while True:
        try:
            with _get(f"{control_url}/agent/v1/repository/bundles/agent", token) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise InstallError(f"the control plane refused the agent bundle: HTTP {exc.code} "
                                   f"{exc.read()[:300].decode(errors='replace')}") from None
            time.sleep(float(exc.headers.get("Retry-After", "5")))
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise InstallError(f"the control plane at {control_url} cannot be reached: {exc}") from None
            time.sleep(2.0)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fetch(control_url: str, token: str, entry: dict, dest: Path) -> int:  # type: ignore[type-arg]
    """Download one wheel to ``dest`` unless it is there with its hash; returns bytes fetched."""
    if dest.is_file() and dest.stat().st_size == entry["size"] and _sha256(dest) == entry["sha256"]:
        return 0
    fetched, problem = 0, ""
    for attempt in range(1, ATTEMPTS + 1):
        part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        h = hashlib.sha256()
        try:
            with _get(f"{control_url}/agent/v1/repository/{entry['sha256']}", token) as resp, open(part, "wb") as out:
                while chunk := resp.read(_CHUNK):
                    fetched += len(chunk)
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() == entry["sha256"] and part.stat().st_size == entry["size"]:
                part.replace(dest)
                return fetched
            problem = f"{entry['name']}: sha256 {h.hexdigest()} does not match the listed {entry['sha256']}"
        except (urllib.error.URLError, OSError) as exc:
            problem = f"{entry['name']}: {exc}"
        finally:
            part.unlink(missing_ok=True)
        time.sleep(attempt)
    raise InstallError(f"could not fetch {problem} after {ATTEMPTS} attempts")


def _safe_name(name: str) -> str:
    if "/" in name or name.startswith(".") or not name.endswith(".whl"):
        raise InstallError(f"the repository listed {name!r}, which is not a wheel file name")
    return name


def install(control_url: str, token: str, base: Path, python: str = sys.executable) -> dict:  # type: ignore[type-arg]
    started = time.monotonic()
    control_url = control_url.rstrip("/")
    bundle = _bundle(control_url, token)
    wheels = base / "cache" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    fetched = sum(_fetch(control_url, token, a, wheels / _safe_name(a["name"])) for a in bundle["artifacts"])
    fetch_seconds = time.monotonic() - started
    names = [a["name"] for a in bundle["artifacts"]]
    corral = next(n for n in names if n.startswith("corral-"))
    pip = next((n for n in names if n.startswith("pip-")), None)
    env = base / "agent" / bundle["digest"][:16]
    installed = False
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (env / MARKER).is_file():
            shutil.rmtree(env, ignore_errors=True)  # a killed install's leftovers
            clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
            made = subprocess.run([python, "-m", "venv", "--without-pip", str(env)], env=clean, timeout=300,
                                  capture_output=True, text=True)
            if made.returncode != 0:
                raise InstallError(f"{python} -m venv failed (exit {made.returncode}): {made.stderr.strip()[-500:]}")
            runner = [str(env / "bin" / "python"), str(wheels / pip / "pip")] if pip else [str(env / "bin" / "python"), "-m", "pip"]
            result = subprocess.run(
                [*runner, "install", "--quiet", "--no-index", "--no-compile", "--disable-pip-version-check",
                 "--no-cache-dir", "--find-links", str(wheels), "corral==" + corral.split("-")[1]],
                env=clean, timeout=900, capture_output=True, text=True)
            if result.returncode != 0:
                raise InstallError(f"pip could not install the agent (exit {result.returncode}): "
                                   + "\n".join(result.stderr.strip().splitlines()[-10:]))
            (env / MARKER).write_text(json.dumps({"digest": bundle["digest"], "installed_at": time.time()}))
            installed = True
    return {"python": str(env / "bin" / "python"), "digest": bundle["digest"], "fetched_bytes": fetched,
            "installed": installed, "seconds": {"fetch": round(fetch_seconds, 2),
                                                "total": round(time.monotonic() - started, 2)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corral-install-agent")
    parser.add_argument("--control-url", required=True)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--base", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        result = install(args.control_url, args.token_file.read_text().strip(), args.base.expanduser())
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        print(f"corral-install-agent: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
