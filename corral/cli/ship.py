"""Shipping a request's local files: the one client-side path every caller uses (the CLI's
``step add``, ``cluster create`` and ``quickstart``, the tests, the benchmarks).

The files are on this machine, not necessarily the control plane's: each step kind's own
parser (``corral.jobs``) finds them in the arguments, relative ones are made absolute,
each file is uploaded content-addressed (``HEAD`` first, so an unchanged file is not sent
again; ``PUT /api/v1/artifacts/{sha256}``, streamed) and named in the request: a step's
``files`` (path -> sha256), a bootstrap action's ``sha256``.
"""

from __future__ import annotations

import copy
import hashlib
import os
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from corral.cli.client import auth_problem, describe_error
from corral.domain.states import StepType
from corral.errors import format_loc
from corral.jobs.base import StepKind
from corral.jobs.files import encode, rewrite
from corral.jobs.registry import STEP_KINDS

CHUNK = 1 << 20  # files are hashed and sent in pieces of this size: never whole in memory
LIMIT_HEADER = "X-Corral-Artifact-Limit"
MIB = 1 << 20


class ShipError(Exception):
    """A local file cannot be shipped (missing, not a file, too large): bad input, which
    the CLI reports in one line with exit code 2."""


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of the file's content."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(partial(handle.read, CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def upload(http: httpx.Client, path: Path, where: str) -> str:
    """Upload ``path`` unless the server has its content already; returns its sha256.
    ``http`` talks to the API root (``.../api/v1``); ``where`` names the field in errors."""
    try:
        sha, size = file_sha256(path)
    except OSError as exc:
        raise ShipError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    head = http.head(f"/artifacts/{sha}")
    if head.status_code == 200:
        return sha
    if head.status_code != 404:
        head.raise_for_status()
    limit = int(head.headers.get(LIMIT_HEADER) or 0)
    if limit and size > limit:
        raise ShipError(f"{where}: {path} has {size / MIB:.1f} MiB, more than the server takes "
                        f"({limit / MIB:.0f} MiB, its CORRAL_MAX_ARTIFACT_MB)")
    with path.open("rb") as handle:
        # An explicit length makes httpx send a plain body instead of a chunked one.
        resp = http.put(f"/artifacts/{sha}", content=iter(partial(handle.read, CHUNK), b""),
                        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    if 400 <= resp.status_code < 500:
        message = auth_problem(resp) or describe_error(resp)
        if resp.status_code == 422 and "sha256" in message:
            message = "it changed while it was uploaded; try again"
        raise ShipError(f"{where}: {path}: {message}")
    resp.raise_for_status()
    return sha


def _kind(type_: Any) -> StepKind | None:
    try:
        return STEP_KINDS[StepType(str(type_).upper())]
    except (KeyError, ValueError):
        return None  # the server names the bad type


def absolute_args(type_: Any, args: list[str], base: Path) -> list[str]:
    """``args`` with each relative local file its step kind finds made absolute against
    ``base`` (the current directory for ``step add``, the spec file's for a spec), as
    spark-submit or hadoop would resolve them there. Symbolic links are kept: the file's
    name is what the job sees."""
    kind = _kind(type_)
    if kind is None or not all(isinstance(a, str) for a in args):
        return args
    relative = [f for f in kind.check(args)[0] if not f.path.startswith("/")]

    def absolute(f: Any) -> str:
        path = os.path.abspath(base / f.path)
        return encode(path) if f.uri else path

    return rewrite(args, relative, absolute)


def ship_step(http: httpx.Client, step: dict[str, Any], loc: tuple[str | int, ...] = (),
              base: Path | None = None) -> dict[str, Any]:
    """The step request (a dict as posted) with its local files uploaded and named in
    ``files``; raises ShipError naming the argument of a file that is missing. Arguments
    the server would refuse anyway are left for it to name."""
    kind = _kind(step.get("type"))
    args = step.get("args") or []
    if kind is None or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return step
    hints = {(f.index, f.start): f.hint for f in kind.check(args)[0] if f.hint}  # said of the name as written
    args = absolute_args(step["type"], args, base or Path.cwd())
    files, errors = kind.check(args)
    uploaded = dict(step.get("files") or {})
    sent: set[str] = set()
    if not errors:
        for f in files:
            if f.path in sent:
                continue  # named twice in the arguments: checked and sent once
            sent.add(f.path)
            where = format_loc((*loc, "args", f.index))
            path = Path(f.path)
            if not path.exists():
                raise ShipError(f"{where}: {f.what} not found: {f.path}{f.hint or hints.get((f.index, f.start), '')}")
            if not path.is_file():
                raise ShipError(f"{where}: {f.what} is not a file: {f.path}")
            uploaded[f.path] = upload(http, path, where)
    return {**step, "args": args, **({"files": uploaded} if uploaded else {})}


def ship_cluster_spec(http: httpx.Client, spec: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """The cluster spec (a dict as posted) with its bootstrap scripts and its steps' local
    files uploaded; the caller's spec is not changed."""
    out = copy.deepcopy(spec)
    for i, action in enumerate(out.get("bootstrap_actions") or []):
        if not isinstance(action, dict) or not isinstance(action.get("path"), str):
            continue
        where = format_loc(("bootstrap_actions", i, "path"))
        path = Path(os.path.abspath((base or Path.cwd()) / action["path"]))
        if not path.exists():
            raise ShipError(f"{where}: file not found: {path}")
        if not path.is_file():
            raise ShipError(f"{where}: not a file: {path}")
        action["path"], action["sha256"] = str(path), upload(http, path, where)
    steps = out.get("steps")
    if isinstance(steps, list):
        out["steps"] = [ship_step(http, s, ("steps", i), base) if isinstance(s, dict) else s for i, s in enumerate(steps)]
    return out
