"""The server's collector settings: start-up's objects frozen out of full collections and
the young generation collected less often; cycles are still collected."""

from __future__ import annotations

import gc

from corral import gc_tuning


def test_settle_heap_freezes_start_up_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc_tuning.settle_heap()
        assert gc.get_freeze_count() > 1000  # this process's modules and classes, at least
        assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, gc_tuning.MIDDLE_THRESHOLD, gc_tuning.OLD_THRESHOLD)
        assert gc.isenabled()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after the freeze
        del a, b
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, Node)]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
