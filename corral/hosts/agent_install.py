"""Build the agent's virtual environment on a host, offline, from the control plane's wheels.

This file runs ON THE HOST, with the host's own Python 3.11 and its standard library only
(the ssh provider copies it there and runs ``python3.11 agent_install.py MANIFEST`` with
the node's agent token on stdin: a token on a command line would show in ``ps``).

The manifest (JSON) says::

    {"control_url": "http://198.18.0.1:7420",        # the control plane, as agents reach it
     "wheel_cache": "~/.corral-host/cache/wheels",   # one file per sha256, kept across nodes
     "env": "~/.corral-host/agent/<digest16>",       # the environment to build
     "lock": "~/.corral-host/locks/agent-install.lock",
     "wheels": [{"name": "corral-0.1.0-py3-none-any.whl", "sha256": "...", "size": 123}, ...]}

Steps, all under an exclusive ``flock`` on ``lock``, so concurrent creates on one host
(several nodes, several clusters) never see a half-written wheel or environment:

1. each wheel not yet in the cache is fetched once from
   ``GET <control_url>/agent/v1/repository/<sha256>`` (bearer token), its size and sha256
   checked, and renamed into ``<wheel_cache>/<sha256>/<name>`` (wheel names matter to pip);
   transient HTTP failures are retried with backoff;
2. unless ``<env>/.corral-complete`` exists: the environment is (re)built from scratch
   with ``python3.11 -m venv`` and ``pip install --no-index --find-links`` of exactly the
   bundle's wheels (pip checks that their dependencies are all among them), then the
   marker is written last, so a build cut short is rebuilt, never used.

Exit status 0 with ``installed`` or ``present`` on stdout; otherwise non-zero with the
reason on stderr (an HTTP status and body tail, pip's output tail).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

COMPLETE = ".corral-complete"
ATTEMPTS = 4


class InstallError(Exception):
    pass


def _fetch(url: str, token: str, dest_dir: str, wheel: dict[str, object]) -> None:
    name, sha256, size = str(wheel["name"]), str(wheel["sha256"]), int(wheel["size"])  # type: ignore[call-overload]
    final_dir = os.path.join(dest_dir, sha256)
    final = os.path.join(final_dir, name)
    if os.path.isfile(final) and os.path.getsize(final) == size:
        return  # written only after its hash was checked (rename below)
    os.makedirs(final_dir, exist_ok=True)
    request = urllib.request.Request(f"{url.rstrip('/')}/agent/v1/repository/{sha256}",
                                     headers={"Authorization": f"Bearer {token}"})
    delay, last = 1.0, ""
    for attempt in range(ATTEMPTS):
        fd, partial = tempfile.mkstemp(prefix=".part-", dir=final_dir)
        try:
            digest = hashlib.sha256()
            got = 0
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as resp:
                while chunk := resp.read(1 << 20):
                    digest.update(chunk)
                    got += len(chunk)
                    out.write(chunk)
            if got != size or digest.hexdigest() != sha256:
                raise InstallError(f"{name}: got {got} bytes with sha256 {digest.hexdigest()}, "
                                   f"expected {size} bytes with {sha256}")
            os.replace(partial, final)
            return
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
    raise InstallError(last)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _build(env: str, wheels: list[str], cache_dir: str) -> None:
    shutil.rmtree(env, ignore_errors=True)
    os.makedirs(os.path.dirname(env), exist_ok=True)
    # pip's scratch space beside the environment, not in the host's /tmp.
    scratch = tempfile.mkdtemp(prefix=".build-", dir=os.path.dirname(env))
    try:
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
                   "TMPDIR": scratch, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        for argv in ([sys.executable, "-m", "venv", env],
                     [os.path.join(env, "bin", "python"), "-m", "pip", "install", "--no-index", "--no-cache-dir",
                      "--find-links", cache_dir, *wheels]):
            result = subprocess.run(argv, capture_output=True, text=True, env=run_env, timeout=1200)
            if result.returncode != 0:
                raise InstallError(f"`{' '.join(argv[:4])} ...` exited with {result.returncode}:\n"
                                   + _tail(result.stdout + "\n" + result.stderr))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def install(manifest: dict[str, object], token: str) -> str:
    """Returns "present" or "installed"; raises InstallError."""
    env, cache, lock = str(manifest["env"]), str(manifest["wheel_cache"]), str(manifest["lock"])
    wheels = list(manifest["wheels"])  # type: ignore[call-overload]
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # bounded by the remote `timeout` the command runs under
        if os.path.exists(os.path.join(env, COMPLETE)):
            return "present"
        os.makedirs(cache, exist_ok=True)
        for wheel in wheels:
            _fetch(str(manifest["control_url"]), token, cache, wheel)
        # One --find-links directory of the bundle's wheels only, so pip resolves among them.
        links = tempfile.mkdtemp(prefix=".links-", dir=cache)
        try:
            paths = []
            for wheel in wheels:
                link = os.path.join(links, str(wheel["name"]))
                os.symlink(os.path.join(cache, str(wheel["sha256"]), str(wheel["name"])), link)
                paths.append(link)
            _build(env, paths, links)
        finally:
            shutil.rmtree(links, ignore_errors=True)
        with open(os.path.join(env, COMPLETE), "w") as marker:
            marker.write(json.dumps({"built_at": time.time(), "wheels": len(wheels)}))
        return "installed"


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: agent_install.py MANIFEST  (agent token on stdin)", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    token = sys.stdin.readline().strip()
    if not token:
        print("no agent token on stdin", file=sys.stderr)
        return 2
    try:
        print(install(manifest, token))
    except InstallError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
