"""SQLite's writers in one process take turns on a lock: taken at a transaction's first
write, given back at its commit or rollback, never by reads or autocommit statements; a
waiting writer goes on the moment the lock is free."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from corral.store import write_lock
from corral.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    yield store
    store.dispose()


def _lock(store: Store) -> threading.Lock:
    return write_lock._LOCKS[str(store.engine.url.database)]


def test_the_lock_is_held_from_the_first_write_to_the_commit(store: Store) -> None:
    lock = _lock(store)
    with store.session() as s:
        s.execute(text("SELECT count(*) FROM t")).scalar()
        assert not lock.locked()  # a read takes nothing
        s.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert lock.locked()
    assert not lock.locked()


def test_a_rollback_gives_it_back(store: Store) -> None:
    lock = _lock(store)
    with pytest.raises(RuntimeError):
        with store.session() as s:
            s.execute(text("UPDATE t SET v = 'x'"))
            assert lock.locked()
            raise RuntimeError("boom")
    assert not lock.locked()
    with store.session() as s:
        with pytest.raises(Exception):
            s.execute(text("INSERT INTO t (k, v) VALUES (1, 'a'), (1, 'b')"))  # a failed statement
    assert not lock.locked()


def test_autocommit_statements_take_no_lock(store: Store) -> None:
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("INSERT INTO t (v) VALUES ('auto')"))
        assert not _lock(store).locked()  # no commit would ever give it back


def test_a_waiting_writer_goes_on_as_soon_as_the_first_commits(store: Store) -> None:
    first_wrote, release = threading.Event(), threading.Event()
    waited: list[float] = []

    def first() -> None:
        with store.session() as s:
            s.execute(text("INSERT INTO t (v) VALUES ('first')"))
            first_wrote.set()
            release.wait(10)

    def second() -> None:
        first_wrote.wait(10)
        t0 = time.monotonic()
        with store.session() as s:
            s.execute(text("INSERT INTO t (v) VALUES ('second')"))
            waited.append(time.monotonic() - t0)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_wrote.wait(10)
    time.sleep(0.3)
    assert not waited  # still behind the first's open transaction
    release.set()
    for t in threads:
        t.join(10)
    assert waited and waited[0] >= 0.3
    with store.session() as s:
        assert [r[0] for r in s.execute(text("SELECT v FROM t ORDER BY k"))] == ["first", "second"]


def test_a_lock_held_too_long_is_left_to_sqlite(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_lock, "TIMEOUT", 0.2)
    lock = _lock(store)
    lock.acquire()  # as if a writer never came back
    try:
        with store.session() as s:
            s.execute(text("INSERT INTO t (v) VALUES ('anyway')"))  # waits 0.2 s, then SQLite's own lock
        with store.session() as s:
            assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        lock.release()
