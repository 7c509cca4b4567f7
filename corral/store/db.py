"""Engine, sessions and schema migration.

SQLite (the default, a file in the Corral home) runs in WAL mode with a busy timeout so
the API threads and the reconciler can write concurrently; within a process its writers
take turns on a lock (``corral.store.write_lock``) rather than SQLite's sleeping retries.
PostgreSQL is selected with ``CORRAL_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from corral.store import write_lock
from corral.store.write_count import WriteCount

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # A pool as large as the threads that use it at once (the server's request threads,
        # the reconciler's and sampler's pools): a connection opened past the pool is closed
        # again after use, and opening one costs the pragmas below each time.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": write_lock.TIMEOUT,
                                                  "factory": write_lock.WriterConnection},
                               pool_size=20, max_overflow=40)
        write_lock.serialize_writers(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


class Store:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.writes = WriteCount(self.engine)  # each thread's writes: when a snapshot it read may be reused
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        if self.engine.dialect.name == "sqlite":
            self._incremental_vacuum_mode()
        migrate(self.engine)

    def _incremental_vacuum_mode(self) -> None:
        """SQLite's auto_vacuum=INCREMENTAL, so the pages of deleted rows can be handed back
        (``reclaim_space``) and aged-out metric history shrinks the file: set before the
        first table of a new file, or applied by one VACUUM to a file made before Corral
        set it."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2:  # 2: INCREMENTAL
                return
            conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
            if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
                conn.exec_driver_sql("VACUUM")

    def reclaim_space(self) -> None:
        """Give the pages of deleted rows back to the file system (SQLite; PostgreSQL's
        autovacuum makes them reusable by itself)."""
        if self.engine.dialect.name == "sqlite":
            raw = self.engine.raw_connection()
            try:
                # executescript steps the pragma to its end; one execute() frees one page.
                raw.driver_connection.executescript("PRAGMA incremental_vacuum;")  # type: ignore[union-attr]
            finally:
                raw.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on error."""
        with self._sessions() as session:
            with session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()
