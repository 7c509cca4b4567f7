"""A real, throw-away PostgreSQL server for the test session.

The server binaries come from Debian's ``postgresql`` package (``make test`` installs them
with ``scripts/ensure-test-servers.sh``). ``initdb`` refuses to run as root, so when the tests
run as root the server is initialised and run as the ``postgres`` OS user, in a private
temporary directory owned by that user. The server listens on 127.0.0.1 only, on a free
port, with its Unix socket in that directory; every connection authenticates with a
password (scram-sha-256).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_USER = "postgres"  # OS user the server runs as when the tests run as root
ROLE = "corral"  # the password-authenticated role the tests connect as
DATABASE = "corral"


class PostgresUnavailable(Exception):
    """The server cannot be started here; the message says why and what to do."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: newest Debian cluster version, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True)
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH. "
        "The store tests need a real PostgreSQL server: run `make test` (it installs them through "
        "scripts/ensure-test-servers.sh) or `apt-get install -y postgresql`."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _others_can_traverse(path: Path) -> bool:
    """Whether another user can reach ``path`` (every ancestor has o+x)."""
    for part in [path, *path.parents]:
        if not os.stat(part).st_mode & stat.S_IXOTH:
            return False
    return True


@dataclass
class PostgresServer:
    """One server in a private directory. ``start()`` then ``stop()`` (always)."""

    bindir: Path
    root: Path | None = None
    port: int = 0
    password: str = ""
    superuser_password: str = ""
    _started: bool = False

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    # -- running the server binaries -------------------------------------------------------

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the ``postgres`` OS user when we are root."""
        assert self.root is not None
        if self.as_root:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C"
        return subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.logfile.read_text()[-3000:] if self.logfile.exists() else ""
            raise PostgresUnavailable(
                f"{what} failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n{log}"
            )

    def _make_root(self) -> Path:
        base = Path(tempfile.gettempdir())
        if self.as_root and not _others_can_traverse(base):
            base = Path("/tmp")  # the postgres user must be able to reach its data directory
        root = Path(tempfile.mkdtemp(prefix="corral-pg-", dir=base))
        if self.as_root:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise PostgresUnavailable(
                    f"the tests run as root and initdb refuses root, but there is no {SERVER_USER!r} OS user "
                    "to run the server as (Debian's postgresql package creates it: apt-get install -y postgresql)"
                ) from None
            os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        return root

    def start(self) -> None:
        self.root = self._make_root()
        self.password = secrets.token_urlsafe(16)
        self.superuser_password = secrets.token_urlsafe(16)
        pwfile = self.root / "superuser.pw"
        pwfile.write_text(self.superuser_password + "\n")
        if self.as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        self._check(
            self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "scram-sha-256",
                       f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-sync"]),
            "initdb",
        )
        pwfile.unlink()
        last: Exception | None = None
        for _ in range(5):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            options = " ".join([
                "-c listen_addresses=127.0.0.1", f"-c port={self.port}", f"-c unix_socket_directories={self.root}",
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
            ])
            result = self._run([str(self.bindir / "pg_ctl"), "start", "-D", str(self.datadir), "-l", str(self.logfile),
                                "-w", "-t", "60", "-o", options])
            if result.returncode == 0:
                self._started = True
                break
            try:
                self._check(result, "pg_ctl start")
            except PostgresUnavailable as exc:
                last = exc
        else:
            raise last or PostgresUnavailable("pg_ctl start failed")
        self._create_role_and_database()

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        """An autocommit connection as the server's superuser (password auth over TCP)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                       password=self.superuser_password, dbname=dbname, autocommit=True,
                                       connect_timeout=5)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _create_role_and_database(self) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(self.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))

    def url(self, dbname: str = DATABASE) -> str:
        """SQLAlchemy URL of ``dbname`` as the password-authenticated test role."""
        return f"postgresql+psycopg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, empty database owned by the test role; returns its name."""
        name = "t_" + secrets.token_hex(8)
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(ROLE)))
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Stop the server (immediate mode: nothing of it needs to survive) and remove its files."""
        if self.root is None:
            return
        try:
            if self._started or (self.datadir / "postmaster.pid").exists():
                self._run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate", "-w",
                           "-t", "30"], timeout=60)
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
