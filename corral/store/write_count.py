"""How many writes the calling thread has made to a store: a piece of work that read rows
at one count may reuse them while its own count stays the same (``ClusterReconciler._load``
re-reads its cluster after each of its watches only when one of them wrote).

Counted for every INSERT, UPDATE, DELETE or REPLACE statement as it runs, and again at the
commit of a connection that wrote. Writes by other threads and processes are not counted:
they are not ordered with the work in this thread anyway, and its next piece of work reads
them (a reconcile pass reads its cluster afresh at its start).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

from corral.store.write_lock import is_write

_WROTE = "corral.wrote"  # in a connection's info between a write and its commit or rollback


class WriteCount:
    def __init__(self, engine: Engine) -> None:
        self._mine = threading.local()
        event.listen(engine, "before_cursor_execute", self._on_execute)
        event.listen(engine, "commit", self._on_end)
        event.listen(engine, "rollback", self._on_end)

    @property
    def value(self) -> int:
        """This thread's writes so far (statements, and commits of connections that wrote)."""
        return getattr(self._mine, "count", 0)

    def _bump(self) -> None:
        self._mine.count = self.value + 1

    def _on_execute(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if is_write(statement):
            conn.info[_WROTE] = True
            self._bump()

    def _on_end(self, conn: Any) -> None:
        if conn.info.pop(_WROTE, False):
            self._bump()
