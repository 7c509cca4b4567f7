"""Which nodes leave a shrink, and the HDFS safety of a CORE shrink (refused or clamped)."""

from __future__ import annotations

import pytest

from corral.elastic.scalein import Candidate, HdfsState, choose_leaving, safe_count, shrink_problem

GIB = 1 << 30


def test_nodes_without_application_masters_and_with_the_least_work_leave_first() -> None:
    nodes = [Candidate("n-am", app_masters=1, running_containers=0, launched_at=5),
             Candidate("n-busy", running_containers=4, launched_at=9),
             Candidate("n-old", running_containers=1, launched_at=1),
             Candidate("n-new", running_containers=1, launched_at=8),
             Candidate("n-free", running_containers=0, launched_at=2)]
    assert choose_leaving(nodes, 3) == ["n-free", "n-new", "n-old"]
    assert choose_leaving(nodes, 5)[-1] == "n-am"
    assert choose_leaving(nodes, 0) == []


def test_named_nodes_must_be_members_and_match_the_count() -> None:
    nodes = [Candidate("n-1"), Candidate("n-2"), Candidate("n-3")]
    assert choose_leaving(nodes, 1, ["n-3"]) == ["n-3"]
    with pytest.raises(ValueError, match="not a running node of the group: n-9"):
        choose_leaving(nodes, 1, ["n-9"])
    with pytest.raises(ValueError, match="2 nodes named for a shrink by 1"):
        choose_leaving(nodes, 1, ["n-1", "n-2"])
    with pytest.raises(ValueError, match="cannot remove 4 of 3"):
        choose_leaving(nodes, 4)


def test_a_core_shrink_keeps_replication_and_room_for_the_data() -> None:
    hdfs = HdfsState(replication=2, used_bytes=9 * GIB, capacities=[5 * GIB] * 4)
    assert shrink_problem(3, hdfs) is None  # 9 GiB in 15 GiB: 60 %
    assert shrink_problem(1, hdfs) == ("CORE would have 1 node, fewer than dfs.replication 2: blocks could never "
                                       "be fully replicated")
    problem = shrink_problem(2, hdfs)  # 9 GiB in 10 GiB: above 80 %
    assert problem is not None and "more than 80% of it" in problem
    assert safe_count(4, 2, hdfs) == (3, f"clamped to 3: {problem}")
    assert safe_count(3, 2, hdfs) == (3, f"no shrink: {problem}")
    assert safe_count(4, 3, hdfs) == (3, None)
