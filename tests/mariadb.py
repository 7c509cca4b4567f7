"""A real, throw-away MariaDB server for the test session (MySQL support is proven on it).

The binaries come from Debian's ``mariadb-server`` package (``make test`` installs them with
``scripts/ensure-test-servers.sh``, without starting Debian's own service). The server gets a
private temporary directory, listens on 127.0.0.1 only, on a free port, with its socket in
that directory; the tests connect over TCP as a password-authenticated user.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.processes import stop_child

USER = "corral"


class MariaDBUnavailable(Exception):
    """The server cannot be started here; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binaries() -> tuple[str, str]:
    """(mariadb-install-db, mariadbd)."""
    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    if not install or not server:
        raise MariaDBUnavailable(
            "MariaDB server binaries (mariadb-install-db, mariadbd) were not found. The MySQL/MariaDB tests need "
            "a real server: run `make test` (it installs them through scripts/ensure-test-servers.sh) or "
            "`apt-get install -y mariadb-server`.")
    return install, server


@dataclass
class MariaDBServer:
    """One server in a private directory. ``start()`` then ``stop()`` (always)."""

    root: Path | None = None
    port: int = 0
    password: str = ""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        install, server = find_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="corral-mariadb-"))
        self.password = secrets.token_urlsafe(16)
        datadir = self.root / "data"
        result = subprocess.run([install, "--no-defaults", f"--datadir={datadir}", "--user=root", "--skip-test-db",
                                 "--auth-root-authentication-method=socket"], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise MariaDBUnavailable(f"mariadb-install-db failed: {result.stderr[-2000:]}")
        self.port = free_port()
        log = open(self.root / "server.log", "ab")
        # --user=root: the tests may run as root, and mariadbd refuses that unless told.
        self._proc = subprocess.Popen([server, "--no-defaults", f"--datadir={datadir}", "--user=root",
                                       "--bind-address=127.0.0.1", f"--port={self.port}",
                                       f"--socket={self.root / 'mysqld.sock'}", f"--pid-file={self.root / 'mysqld.pid'}",
                                       "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0",
                                       "--innodb-doublewrite=0", "--max-connections=300"],
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._create_user()

    def _root_connection(self) -> pymysql.connections.Connection:
        assert self.root is not None
        deadline = time.monotonic() + 60
        while True:
            try:
                return pymysql.connect(unix_socket=str(self.root / "mysqld.sock"), user="root", autocommit=True)
            except pymysql.err.OperationalError:
                if self._proc is not None and self._proc.poll() is not None:
                    raise MariaDBUnavailable("mariadbd exited: " + (self.root / "server.log").read_text()[-2000:]) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _create_user(self) -> None:
        with self._root_connection() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'")

    def connect(self, database: str) -> pymysql.connections.Connection:
        """An autocommit connection to ``database`` as the test user, over TCP."""
        return pymysql.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                               database=database, autocommit=True)

    def create_database(self) -> str:
        name = "t_" + secrets.token_hex(8)
        with self._root_connection() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        return name

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:mysql://127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self._proc is not None:
            stop_child(self._proc, grace=30)
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
