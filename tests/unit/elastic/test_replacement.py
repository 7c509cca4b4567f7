"""Self-healing decisions: who is due, MASTER never, and the limits that stop a storm."""

from __future__ import annotations

from corral.elastic.replacement import NodeHealth, ReplacementRules, decide, due

RULES = ReplacementRules(lost_grace=120, unhealthy_grace=300, max_in_flight=1, max_per_hour=4)
FULL = "1/1 local-dirs usable space is below configured utilization percentage/no more usable space"


def test_a_lost_node_is_due_only_with_its_processes_gone_after_the_grace() -> None:
    lost = NodeHealth("n-1", "CORE", lost_since=0, processes_gone=True)
    assert due(lost, RULES, 119) is None
    assert due(lost, RULES, 130) == "its agent has been lost for 130 s and none of its processes runs"
    assert due(NodeHealth("n-2", "CORE", lost_since=0, processes_gone=False), RULES, 1000) is None  # may come back
    assert due(NodeHealth("n-0", "MASTER", lost_since=0, processes_gone=True), RULES, 1000) is None
    sick = NodeHealth("n-3", "TASK", unhealthy_since=0, health_report=FULL)
    assert due(sick, RULES, 299) is None and due(sick, RULES, 300) == (
        f"its NodeManager has been UNHEALTHY for 300 s: {FULL}")


def test_one_replacement_at_a_time_and_a_few_per_hour() -> None:
    nodes = [NodeHealth("n-1", "CORE", lost_since=50, processes_gone=True),
             NodeHealth("n-2", "CORE", lost_since=10, processes_gone=True),
             NodeHealth("n-3", "TASK"), NodeHealth("n-4", "TASK"), NodeHealth("n-5", "TASK")]
    verdicts = decide(nodes, RULES, now=500, in_flight=0, started_last_hour=0)
    assert [(v.node_id, v.replace) for v in verdicts] == [("n-2", True), ("n-1", False)]  # the longest lost first
    assert verdicts[1].reason.startswith("held: a replacement is already under way; due because its agent")
    hourly = decide(nodes, RULES, now=500, in_flight=0, started_last_hour=4)
    assert not any(v.replace for v in hourly)
    assert hourly[0].reason.startswith("held: 4 replacements began in the last hour (at most 4)")


def test_a_report_shared_by_half_the_nodes_replaces_none_of_them() -> None:
    shared = [NodeHealth(f"n-{i}", "CORE", unhealthy_since=0, health_report=FULL) for i in range(2)]
    healthy = [NodeHealth("n-8", "TASK"), NodeHealth("n-9", "TASK")]
    verdicts = decide([*shared, *healthy], RULES, now=1000, in_flight=0, started_last_hour=0)
    assert [v.replace for v in verdicts] == [False, False]
    assert verdicts[0].reason.startswith("held: 2 of 4 nodes are unhealthy with the same report")
    alone = decide([shared[0], *healthy, NodeHealth("n-7", "CORE")], RULES, now=1000, in_flight=0, started_last_hour=0)
    assert [(v.node_id, v.replace) for v in alone] == [("n-0", True)]


def test_one_full_disk_under_every_node_is_one_cause_whatever_each_nodes_paths() -> None:
    from corral.elastic.replacement import cause

    def report(node: str) -> str:
        return (f"1/1 local-dirs usable space is below configured utilization percentage/no more usable space "
                f"[ /var/corral/nodes/c-1/{node}/data/yarn/local : used space above threshold of 90.0% ] ; "
                f"1/1 log-dirs usable space is below configured utilization percentage/no more usable space "
                f"[ /var/corral/nodes/c-1/{node}/logs/userlogs : used space above threshold of 90.0% ]")

    assert cause(report("n-1")) == cause(report("n-2")) == (
        "local-dirs usable space is below configured utilization percentage/no more usable space ; "
        "log-dirs usable space is below configured utilization percentage/no more usable space")
    nodes = [NodeHealth(f"n-{i}", "CORE", unhealthy_since=0, health_report=report(f"n-{i}")) for i in range(3)]
    verdicts = decide(nodes, RULES, now=1000, in_flight=0, started_last_hour=0)
    assert [v.replace for v in verdicts] == [False] * 3 and "a cause they share" in verdicts[0].reason
    bad_dir = "1/1 local-dirs have errors: [ /var/corral/nodes/c-1/n-9/data/yarn/local : Not a directory ]"
    assert cause(bad_dir) == "local-dirs have errors:"
