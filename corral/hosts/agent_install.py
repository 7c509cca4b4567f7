"""Build the agent's virtual environment on a host, offline, from the control plane's wheels.

This file runs ON THE HOST, with the host's own Python 3.11 and its standard library only
(Corral is not there yet). The ssh provider copies ``files()`` into one directory of the
host and runs ``python3.11 agent_install.py MANIFEST`` there, with the node's agent token
on stdin (a token on a command line would show in ``ps``).

The manifest (JSON, ``manifest()``) says::

    {"control_url": "http://198.18.0.1:7420",        # the control plane, as agents reach it
     "wheel_cache": "~/.corral-host/cache/wheels",   # one directory per sha256, kept across nodes
     "env": "~/.corral-host/agent/<digest16>",       # the environment to build (layout.agent_env)
     "lock": "~/.corral-host/locks/agent-install.lock",
     "wheels": [{"name": "corral-0.1.0-py3-none-any.whl", "sha256": "...", "size": 123}, ...]}

Steps, all under an exclusive ``flock`` on ``lock``, so concurrent creates on one host
(several nodes, several clusters) never see a half-written wheel or environment:

1. unless ``<env>/.corral-complete`` exists (then nothing is fetched or built):
2. each wheel not yet in the cache is fetched once from
   ``GET <control_url>/agent/v1/repository/<sha256>`` (bearer token), its size and sha256
   checked while it arrives (``corral.runtime.checksums``, copied beside this file), and
   renamed into ``<wheel_cache>/<sha256>/<name>`` (wheel names matter to pip); a listed name that is not a plain wheel file name, or a hash
   that is not one, is refused before any path is made of it. Transient failures (5xx,
   429, the connection, a mismatch) are retried with backoff; any other 4xx is not;
3. the environment is (re)built from scratch: ``python3.11 -m venv --without-pip``, then
   the bundle's own pip, run from its wheel (pip runs from a ``.whl``; quicker than
   ensurepip, and it is the control plane's pinned pip), installs exactly the bundle's
   wheels with ``--no-index`` from a directory holding only them (pip checks that their
   dependencies are all among them). A bundle without a pip wheel gets ensurepip's pip
   (``venv`` with pip). The marker is written last, so a build cut short is rebuilt,
   never used.

Exit status 0 with one JSON line on stdout: ``{"installed": whether it built the
environment now, "python": the environment's interpreter, "fetched_bytes": bytes
downloaded now, "seconds": {"fetch", "total"}}``; 1 with the reason on stderr (an HTTP
status and body tail, pip's output tail); 2 for a usage error.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__:  # imported: corral.hosts.agent_install (the provider, tests)
    from corral.runtime import checksums
else:  # run on a host as a plain file, beside its copy of checksums.py (files())
    import checksums  # type: ignore[import-not-found,no-redef]

COMPLETE = ".corral-complete"
ATTEMPTS = 4
_SHA256 = re.compile(r"[0-9a-f]{64}")


class InstallError(Exception):
    pass


def files() -> dict[str, bytes]:
    """File name -> content of what the host needs in one directory to run this installer:
    this file and the checksum rule it shares with the agent (``corral.runtime.checksums``)."""
    return {Path(p).name: Path(p).read_bytes() for p in (__file__, checksums.__file__)}


def manifest(control_url: str, wheel_cache: str, env: str, lock: str, wheels: list[dict[str, object]]) -> bytes:
    """The installer's input (see the module doc); ``wheels``: name, sha256, size (bytes)."""
    return json.dumps({"control_url": control_url, "wheel_cache": wheel_cache, "env": env, "lock": lock,
                       "wheels": wheels}, indent=1).encode()


def _checked(wheel: dict[str, object]) -> tuple[str, str, int]:
    """(name, sha256, size) of a listed wheel; ``InstallError`` for a name that is not a
    plain wheel file name or a hash that is not one (both become paths here)."""
    name, sha256, size = str(wheel["name"]), str(wheel["sha256"]), wheel["size"]
    if "/" in name or name.startswith(".") or not name.endswith(".whl"):
        raise InstallError(f"the repository listed {name!r}, which is not a wheel file name")
    if not _SHA256.fullmatch(sha256) or not isinstance(size, int) or size < 0:
        raise InstallError(f"the repository listed {name!r} with sha256 {sha256!r} and size {size!r}")
    return name, sha256, size


def _fetch(url: str, token: str, cache: str, wheel: dict[str, object]) -> int:
    """Put the wheel at ``<cache>/<sha256>/<name>`` unless it is there; returns the bytes
    downloaded (0 when cached). Raises ``InstallError`` once retrying cannot help."""
    name, sha256, size = _checked(wheel)
    final_dir = os.path.join(cache, sha256)
    final = os.path.join(final_dir, name)
    if os.path.isfile(final) and os.path.getsize(final) == size:
        return 0  # written only after its hash was checked (rename below)
    os.makedirs(final_dir, exist_ok=True)
    request = urllib.request.Request(f"{url.rstrip('/')}/agent/v1/repository/{sha256}",
                                     headers={"Authorization": f"Bearer {token}"})
    delay, last, fetched = 1.0, "", 0
    for attempt in range(ATTEMPTS):
        fd, partial = tempfile.mkstemp(prefix=".part-", dir=final_dir)
        try:
            received = checksums.Received(name, sha256, size)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
                    while not received.too_long and (chunk := resp.read(checksums.CHUNK)):
                        received.add(chunk)
                        out.write(chunk)
            finally:
                fetched += received.size
            last = received.mismatch() or ""
            if not last:
                os.replace(partial, final)
                return fetched
        except urllib.error.HTTPError as exc:
            body = exc.read()[-500:].decode("utf-8", "replace")
            last = f"HTTP {exc.code} for {name} ({sha256[:12]}): {body.strip()}"
            if exc.code < 500 and exc.code != 429:
                raise InstallError(last) from exc  # refused or unknown: retrying will not help
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last = f"cannot fetch {name} from {url}: {exc}"
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        if attempt + 1 < ATTEMPTS:
            time.sleep(delay)
            delay *= 2
    raise InstallError(f"{last} (after {ATTEMPTS} attempts)")


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _build(env: str, links: str, wheels: list[str]) -> None:
    """A fresh environment at ``env`` with exactly ``wheels`` (paths in ``links``) installed."""
    shutil.rmtree(env, ignore_errors=True)  # a killed build's leftovers
    os.makedirs(os.path.dirname(env), exist_ok=True)
    pip = next((w for w in wheels if os.path.basename(w).startswith("pip-")), None)
    python = os.path.join(env, "bin", "python")
    # pip's scratch space beside the environment, not in the host's /tmp.
    scratch = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(env))
    try:
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
                   "TMPDIR": scratch, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        venv = [sys.executable, "-m", "venv", *(["--without-pip"] if pip else []), env]
        runner = [python, os.path.join(pip, "pip")] if pip else [python, "-m", "pip"]
        for argv in (venv, [*runner, "install", "--no-index", "--no-cache-dir", "--find-links", links, *wheels]):
            result = subprocess.run(argv, capture_output=True, text=True, env=run_env, timeout=1200)
            if result.returncode != 0:
                raise InstallError(f"`{' '.join(argv[:4])} ...` exited with {result.returncode}:\n"
                                   + _tail(result.stdout + "\n" + result.stderr))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def install(spec: dict[str, object], token: str) -> dict[str, object]:
    """Build the environment ``spec`` (the manifest) names unless it is complete; returns
    the JSON line's dict (module doc). Raises ``InstallError``."""
    started = time.monotonic()
    env, cache, lock = str(spec["env"]), str(spec["wheel_cache"]), str(spec["lock"])
    wheels = list(spec["wheels"])  # type: ignore[call-overload]
    python = os.path.join(env, "bin", "python")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # bounded by the remote `timeout` the command runs under
        if os.path.exists(os.path.join(env, COMPLETE)):
            return {"installed": False, "python": python, "fetched_bytes": 0,
                    "seconds": {"fetch": 0.0, "total": round(time.monotonic() - started, 2)}}
        os.makedirs(cache, exist_ok=True)
        fetched = sum(_fetch(str(spec["control_url"]), token, cache, wheel) for wheel in wheels)
        fetch_seconds = time.monotonic() - started
        # One --find-links directory of the bundle's wheels only, so pip resolves among them.
        links = tempfile.mkdtemp(prefix=".links-", dir=cache)
        try:
            paths = []
            for wheel in wheels:
                name, sha256, _ = _checked(wheel)
                link = os.path.join(links, name)
                os.symlink(os.path.join(cache, sha256, name), link)
                paths.append(link)
            _build(env, links, paths)
        finally:
            shutil.rmtree(links, ignore_errors=True)
        with open(os.path.join(env, COMPLETE), "w") as marker:
            marker.write(json.dumps({"built_at": time.time(), "wheels": len(wheels)}))
        return {"installed": True, "python": python, "fetched_bytes": fetched,
                "seconds": {"fetch": round(fetch_seconds, 2), "total": round(time.monotonic() - started, 2)}}


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: agent_install.py MANIFEST  (agent token on stdin)", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    token = sys.stdin.readline().strip()
    if not token:
        print("no agent token on stdin", file=sys.stderr)
        return 2
    try:
        print(json.dumps(install(spec, token)))
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        print(f"agent_install: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
