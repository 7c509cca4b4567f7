"""Python's cyclic garbage collector, set for a long-running server.

A full (generation 2) collection visits every object the process holds; the control
plane holds a few hundred thousand (its modules, classes, FastAPI's routes, SQLAlchemy's
mappers) and, with hundreds of agents reporting, CPython's default thresholds (700, 10, 10)
ran one every 3-5 s that stopped every thread for 110-150 ms on a 2-core machine: the p99
of agent reports and API reads (bench/monitoring.py). So, once started: what start-up
built is moved out of the collector's sight (``gc.freeze``, as Instagram does for its
Django servers; it is never garbage), and the young generation is collected somewhat less
often, so fewer short-lived objects are promoted to be scanned again. Not much less often:
at 20,000 each young collection freed some 16,000 garbage cycles (SQLAlchemy's bound
parameters) in one 40-80 ms stop, and the threads queued behind it for the GIL took
hundreds of milliseconds more to drain; at 2,000 the stops are 10-30 ms. Collection itself stays on:
reference cycles (ORM objects and their sessions, exceptions' frames) are still freed.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 2_000  # allocations minus frees between young collections (CPython: 700)
MIDDLE_THRESHOLD = 20  # young collections per middle one (CPython: 10)
OLD_THRESHOLD = 20  # middle collections per full one, at most (CPython: 10)


def settle_heap() -> None:
    """Call once a server has started (imports done, app built): collect, freeze what is
    left, and raise the thresholds. Idempotent enough to call again (freezing twice only
    freezes what came since)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
