"""Fixtures shared by the step-type tests."""

from __future__ import annotations

from typing import Iterator

import psycopg
import pytest

from tests.postgres import PostgresServer


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a new database of the session's PostgreSQL, dropped after."""
    name = postgres_server.create_database()
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="corral",
                         password=postgres_server.password, dbname=name, autocommit=True) as conn:
        yield conn
    postgres_server.drop_database(name)
