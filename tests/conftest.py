"""Session-wide fixtures: real PostgreSQL, MariaDB and S3 (s3proxy) servers, each started
on first use and stopped at the end of the session.

The host lab's fixtures (``host_lab``, ``host_lab_factory``: N SSH hosts in network
namespaces, tests/hostlab.py) come from tests/hostlab_fixtures.py.

``postgres_url`` starts one server per test session (only when a test asks for it) and
yields the SQLAlchemy URL of an empty database; ``fresh_pg_url`` gives each test a new
database of its own on that server, so tests never see each other's rows.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.hostlab_fixtures import host_lab, host_lab_factory  # noqa: F401  (fixtures: SSH test hosts)
from tests.mariadb import MariaDBServer, MariaDBUnavailable
from tests.postgres import PostgresServer, PostgresUnavailable, find_bindir
from tests.s3server import S3Server, S3Unavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session, started on first use."""
    problem: str | None = None
    try:
        server = PostgresServer(bindir=find_bindir())
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem is not None:  # fail, never skip: these tests are what proves PostgreSQL support
        pytest.fail(problem, pytrace=False)
    try:
        try:
            server.start()
        except PostgresUnavailable as exc:
            problem = f"could not start the test PostgreSQL server: {exc}"
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://USER:PASSWORD@127.0.0.1:PORT/DBNAME`` of a real server."""
    return postgres_server.url()


@pytest.fixture
def fresh_pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database for this test only (dropped afterwards)."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def _running(server: Any, unavailable: type[Exception], what: str) -> Iterator[Any]:
    """Start ``server`` for the session and always stop it; a server that cannot start fails
    the tests that need it (never a skip: these servers are what proves the support)."""
    try:
        try:
            server.start()
        except unavailable as exc:
            pytest.fail(f"could not start the test {what}: {exc}", pytrace=False)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One real S3-compatible server (s3proxy) for the whole session, started on first use."""
    yield from _running(S3Server(), S3Unavailable, "S3 server")


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """One real MariaDB server for the whole session, started on first use."""
    yield from _running(MariaDBServer(), MariaDBUnavailable, "MariaDB server")
