"""One writer at a time, in line, for SQLite.

SQLite allows one write transaction at a time. A writer that finds another's lock is made
to wait by SQLite's busy handler, which sleeps and retries at growing intervals (1, 2, 5,
10, ... 100 ms: sqlite3_busy_timeout's default handler): it wakes up to 100 ms after the lock
is free and can lose the race to a newcomer again, so with a dozen threads writing small
transactions (agent reports, reconciler passes, the sampler), an unlucky one waits for
hundreds of milliseconds. Here a process-wide lock is taken at a connection's first
INSERT, UPDATE or DELETE, where pysqlite begins its write transaction, and given back
right after that connection's commit or rollback: a waiting writer is woken the moment the
lock is free, and SQLite's busy handler only serves other processes (the CLI, migrations).

A writer waits at most ``TIMEOUT`` seconds (SQLite's busy timeout) for the lock, then goes
ahead and leaves it to SQLite, so a transaction held open too long degrades to SQLite's own
behaviour and never deadlocks here. Reads take no lock (WAL: readers never wait).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event

TIMEOUT = 30.0  # seconds: the busy timeout set on every SQLite connection
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def is_write(statement: str) -> bool:
    """Whether a SQL statement writes (where pysqlite begins its write transaction)."""
    return statement.lstrip()[:7].upper().startswith(_WRITES)


_LOCKS: dict[str, threading.Lock] = {}  # database file -> its lock: every engine on a file shares SQLite's one
_LOCKS_GUARD = threading.Lock()


class WriterConnection(sqlite3.Connection):
    """A pysqlite connection that gives the writer lock back once its transaction ends
    (``sqlite3.connect(factory=WriterConnection)``)."""

    held: threading.Lock | None = None

    def take_writer_lock(self, lock: threading.Lock) -> None:
        if self.held is None and lock.acquire(timeout=TIMEOUT):  # not acquired: goes ahead without it
            self.held = lock

    def _give_back(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            held.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()


def serialize_writers(engine: Engine) -> None:
    """Take the database file's writer lock before each write statement on ``engine``,
    whose connections are WriterConnections (``connect_args={"factory": WriterConnection}``).
    Autocommit connections take none (no commit would give it back)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(engine.url.database), threading.Lock())

    @event.listens_for(engine, "before_cursor_execute")
    def _before_write(_conn: Any, cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        dbapi = cursor.connection
        if isinstance(dbapi, WriterConnection) and dbapi.held is None and dbapi.isolation_level is not None \
                and is_write(statement):
            dbapi.take_writer_lock(lock)
