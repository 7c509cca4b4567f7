"""``corral fs ID ls|put|get|cat|rm|mkdir``: a cluster's HDFS through WebHDFS, the NameNode's
REST API, straight from the CLI process (no Java or Hadoop client needed on this host)."""

from __future__ import annotations

import os
import posixpath
import sys
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urlparse

import httpx
import typer
from rich.text import Text

from corral.cli.client import ApiError, Client
from corral.cli.render import Output, console, print_json, table
from corral.services.hadoop_common import HADOOP_USER

app = typer.Typer(help="Browse and move files in a cluster's HDFS (WebHDFS).", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")
CHUNK = 1 << 20  # files move in 1 MiB pieces: never whole in memory
HOME = f"/user/{HADOOP_USER}"  # relative paths resolve here, as `hdfs dfs` does for the hadoop user
UP = ("WAITING", "RUNNING")
# RemoteExceptions caused by the request itself (exit 2). WebHDFS answers 403 for every
# IOException, server-side failures included, so the status alone cannot tell them apart.
BAD_INPUT = {"FileNotFoundException", "FileAlreadyExistsException", "PathIsNotEmptyDirectoryException",
             "ParentNotDirectoryException", "PathIsNotDirectoryException", "InvalidPathException",
             "AccessControlException", "IllegalArgumentException", "HadoopIllegalArgumentException",
             "UnsupportedOperationException"}


def hdfs_path(path: str) -> str:
    """An absolute, normalized HDFS path; ``hdfs://host:port/p`` URIs count as their path."""
    if "://" in path:
        path = urlparse(path).path or "/"
    norm = posixpath.normpath(path if path.startswith("/") else f"{HOME}/{path}")
    return "/" + norm.lstrip("/")  # normpath keeps a leading "//"


def remote_error(resp: httpx.Response, what: str) -> Exception:
    """A WebHDFS error answer as the CLI's errors: ApiError (bad input, exit 2) or RuntimeError (exit 1)."""
    try:
        remote = resp.json()["RemoteException"]
        name, message = str(remote.get("exception") or ""), str(remote.get("message") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        name, message = "", resp.text
    # Hadoop puts the Java stack trace into the message: its first line is the readable part.
    first = next((line.strip() for line in message.splitlines() if line.strip()), f"HTTP {resp.status_code}")
    text = f"{what}: {first}" + (f" ({name})" if name else "")
    if name in BAD_INPUT or (not name and 400 <= resp.status_code < 500):
        return ApiError(resp.status_code, text)
    return RuntimeError(f"HDFS failed: {text}")


class WebHdfs:
    """The few WebHDFS operations the commands need; every request acts as the hadoop user."""

    def __init__(self, namenode: str, transport: httpx.BaseTransport | None = None) -> None:
        self.namenode = namenode.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), transport=transport)

    def url(self, path: str) -> str:
        return f"{self.namenode}/webhdfs/v1{quote(path, safe='/')}"

    def call(self, method: str, path: str, op: str, what: str, **params: str) -> httpx.Response:
        try:
            resp = self.http.request(method, self.url(path), params={"op": op, "user.name": HADOOP_USER, **params})
        except httpx.TransportError as exc:  # caught here: main() would blame the Corral server
            raise RuntimeError(f"cannot reach HDFS at {self.namenode}: {exc}") from exc
        if resp.status_code >= 400:
            raise remote_error(resp, what)
        return resp

    def status(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.call("GET", path, "GETFILESTATUS", path).json()["FileStatus"])
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def listdir(self, path: str) -> list[dict[str, Any]]:
        return list(self.call("GET", path, "LISTSTATUS", f"ls {path}").json()["FileStatuses"]["FileStatus"])

    def mkdirs(self, path: str) -> bool:
        return bool(self.call("PUT", path, "MKDIRS", f"mkdir {path}").json()["boolean"])

    def delete(self, path: str, recursive: bool) -> bool:
        return bool(self.call("DELETE", path, "DELETE", f"rm {path}", recursive=str(recursive).lower()).json()["boolean"])

    def create(self, local: Path, path: str, overwrite: bool) -> None:
        # Two steps, as WebHDFS wants: the NameNode names a DataNode (307, not followed, as
        # a redirected PUT would send the data twice), then the data goes to that DataNode.
        resp = self.call("PUT", path, "CREATE", f"put {path}", overwrite=str(overwrite).lower())
        location = resp.headers.get("Location")
        if resp.status_code != 307 or not location:
            raise RuntimeError(f"HDFS failed: put {path}: the NameNode named no DataNode (HTTP {resp.status_code})")
        try:
            with local.open("rb") as f:
                # An explicit length makes httpx send a plain body instead of a chunked one.
                resp = self.http.put(location, content=iter(partial(f.read, CHUNK), b""), headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(os.fstat(f.fileno()).st_size)})
        except httpx.TransportError as exc:
            raise RuntimeError(f"HDFS failed: put {path}: DataNode {urlparse(location).netloc}: {exc}") from exc
        if resp.status_code >= 400:
            raise remote_error(resp, f"put {path}")

    @contextmanager
    def open(self, path: str, what: str) -> Iterator[Iterator[bytes]]:
        """The file's bytes, streamed; the NameNode's redirect to a DataNode is followed."""
        params = {"op": "OPEN", "user.name": HADOOP_USER}
        try:
            with self.http.stream("GET", self.url(path), params=params, follow_redirects=True) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise remote_error(resp, f"{what} {path}")
                yield resp.iter_bytes(CHUNK)
        except httpx.TransportError as exc:
            raise RuntimeError(f"cannot read {path} from HDFS at {self.namenode}: {exc}") from exc


def namenode_url(cluster: dict[str, Any]) -> str:
    # State first: an ended cluster lists no web UIs, and "no HDFS" would mislead.
    if cluster["status"] not in UP:
        raise ApiError(409, f"cluster {cluster['id']} is {cluster['status']}: its HDFS is usable only while it is WAITING or RUNNING")
    url = cluster.get("web_uis", {}).get("namenode")
    if not url:
        raise ApiError(409, f"cluster {cluster['id']} has no HDFS (services: {', '.join(cluster.get('services', []))})")
    return str(url)


def connect(ctx: typer.Context) -> WebHdfs:
    return WebHdfs(namenode_url(Client().get(f"/clusters/{ctx.obj}")))


def mode_string(entry: dict[str, Any]) -> str:
    """``drwxr-xr-x`` from WebHDFS's octal permission, as ``hdfs dfs -ls`` shows it."""
    mode = int(entry.get("permission", "0"), 8)
    bits = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    if mode & 0o1000:  # sticky bit, as on /tmp
        bits = bits[:-1] + ("t" if bits[-1] == "x" else "T")
    kind = {"DIRECTORY": "d", "SYMLINK": "l"}.get(entry.get("type", ""), "-")
    return kind + bits + ("+" if entry.get("aclBit") else "")


def ls_rows(listed: str, entries: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(mode_string(e), e.get("owner", ""), e.get("group", ""), str(e.get("length", 0)),
             datetime.fromtimestamp(e.get("modificationTime", 0) / 1000).strftime("%Y-%m-%d %H:%M"),
             e.get("pathSuffix") or listed) for e in sorted(entries, key=lambda e: e.get("pathSuffix", ""))]


def put_targets(names: list[str], dest: str, dest_status: dict[str, Any] | None) -> list[str]:
    """Where each local file goes: under ``dest`` when it is a directory (or ends in ``/``)."""
    target = hdfs_path(dest)
    into_dir = (dest_status or {}).get("type") == "DIRECTORY" or (dest_status is None and dest.endswith("/"))
    if len(names) > 1 and not into_dir:
        raise ApiError(400, f"put: {target}: not a directory (several files go into an existing directory)")
    return [posixpath.join(target, name) for name in names] if into_dir else [target]


def say(message: str) -> None:
    console.print(message, markup=False, highlight=False, soft_wrap=True)


@app.callback()
def _cluster(ctx: typer.Context, cluster_id: str = typer.Argument(..., help="The cluster whose HDFS to use.")) -> None:
    ctx.obj = cluster_id  # subcommands look the cluster up themselves, so `--help` needs no server


@app.command()
def ls(ctx: typer.Context, path: str = typer.Argument("/", help="HDFS path (relative ones are under /user/hadoop)."),
       output: Output = OutputOpt) -> None:
    """List a directory, or show one file."""
    listed = hdfs_path(path)
    entries = connect(ctx).listdir(listed)
    if output is Output.json:
        # Listing a file gives one entry with an empty pathSuffix: the file itself.
        print_json([{**e, "path": posixpath.join(listed, e["pathSuffix"]) if e.get("pathSuffix") else listed}
                    for e in entries])
        return
    t = table("permission", "owner", "group", "size", "modification time", "name")
    t.columns[3].justify = "right"
    for col in t.columns:  # a narrow terminal folds the name, not the fixed-width columns
        col.no_wrap, col.overflow = col.header != "name", "fold"
    for row in ls_rows(listed, entries):
        t.add_row(*map(Text, row))  # Text: a name like "[x]" is not Rich markup
    console.print(t)


@app.command(no_args_is_help=True)
def put(ctx: typer.Context, args: list[str] = typer.Argument(..., metavar="LOCAL... HDFS_PATH"),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing HDFS files.")) -> None:
    """Upload local files to an HDFS file or directory."""
    if len(args) < 2:
        raise ApiError(400, "put needs LOCAL... HDFS_PATH")
    *sources, dest = args
    bad = [s for s in sources if not Path(s).is_file()]  # local typos first: no half-done upload
    if bad:
        raise ApiError(400, f"put: {bad[0]}: " + ("not a regular file" if Path(bad[0]).exists() else "no such local file"))
    fs = connect(ctx)
    dest_status = fs.status(hdfs_path(dest))
    for src, target in zip(sources, put_targets([Path(s).name for s in sources], dest, dest_status)):
        existing = dest_status if target == hdfs_path(dest) else fs.status(target)
        if existing is not None and (existing["type"] == "DIRECTORY" or not force):
            why = "is a directory" if existing["type"] == "DIRECTORY" else "file exists (use -f to overwrite it)"
            raise ApiError(400, f"put: {target}: {why}")
        fs.create(Path(src), target, overwrite=force)
        say(f"{src} -> {target} ({Path(src).stat().st_size} bytes)")


@app.command(no_args_is_help=True)
def get(ctx: typer.Context, path: str = typer.Argument(..., metavar="HDFS_PATH"),
        local: str = typer.Argument(..., metavar="LOCAL", help="A local file or an existing directory."),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing local file.")) -> None:
    """Download an HDFS file."""
    source = hdfs_path(path)
    dest = Path(local) / posixpath.basename(source) if Path(local).is_dir() else Path(local)
    if (local.endswith("/") and not Path(local).is_dir()) or not dest.parent.is_dir():
        raise ApiError(400, f"get: {local}: no such local directory")
    if dest.exists() and not force:
        raise ApiError(400, f"get: {dest}: file exists (use -f to overwrite it)")
    # Written beside the target and renamed at the end: a failed download leaves no partial file.
    part = dest.with_name(f".{dest.name}.corral-part")
    try:
        with connect(ctx).open(source, "get") as chunks, part.open("wb") as out:
            size = 0
            for chunk in chunks:
                size += out.write(chunk)
        os.replace(part, dest)
    except OSError as exc:
        raise ApiError(400, f"get: {exc.filename or dest}: {exc.strerror}") from exc
    finally:
        part.unlink(missing_ok=True)
    say(f"{source} -> {dest} ({size} bytes)")


@app.command(no_args_is_help=True)
def cat(ctx: typer.Context, paths: list[str] = typer.Argument(..., metavar="HDFS_PATH...")) -> None:
    """Print HDFS files' bytes to stdout."""
    fs, out = connect(ctx), sys.stdout.buffer
    try:
        for path in paths:
            with fs.open(hdfs_path(path), "cat") as chunks:
                for chunk in chunks:
                    out.write(chunk)
        out.flush()
    except BrokenPipeError:  # `| head`: stop quietly, and let Python's exit-time flush hit /dev/null
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1)


@app.command(no_args_is_help=True)
def rm(ctx: typer.Context, paths: list[str] = typer.Argument(..., metavar="HDFS_PATH..."),
       recursive: bool = typer.Option(False, "--recursive", "-r", "-R", help="Remove directories and their contents.")) -> None:
    """Remove HDFS files (and, with -r, directories). WebHDFS deletes at once: no trash."""
    fs = connect(ctx)
    for path in map(hdfs_path, paths):
        if path == "/":
            raise ApiError(400, "rm: refusing to remove /")
        found = fs.status(path)  # DELETE answers a bare `false` for a missing path: say why
        if found is None:
            raise ApiError(404, f"rm: {path}: no such file or directory")
        if found["type"] == "DIRECTORY" and not recursive:
            raise ApiError(400, f"rm: {path}: is a directory (use -r to remove it)")
        if not fs.delete(path, recursive):
            raise RuntimeError(f"HDFS failed: rm {path}: not removed")
        say(f"removed {path}")


@app.command(no_args_is_help=True)
def mkdir(ctx: typer.Context, paths: list[str] = typer.Argument(..., metavar="HDFS_PATH..."),
          parents: bool = typer.Option(False, "--parents", "-p", help="Make parents as needed; no error if it exists.")) -> None:
    """Make HDFS directories."""
    fs = connect(ctx)
    for path in map(hdfs_path, paths):
        if not parents:  # MKDIRS is always `mkdir -p`: check as plain mkdir would
            if fs.status(path) is not None:
                raise ApiError(400, f"mkdir: {path}: already exists")
            if (fs.status(posixpath.dirname(path)) or {}).get("type") != "DIRECTORY":
                raise ApiError(400, f"mkdir: {posixpath.dirname(path)}: no such directory (use -p to make it)")
        if not fs.mkdirs(path):
            raise RuntimeError(f"HDFS failed: mkdir {path}: not made")
        say(f"made {path}")
