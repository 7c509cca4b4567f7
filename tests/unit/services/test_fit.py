"""The scheduler model (corral.services.fit) against YARN's and standalone Spark's own rules,
and the issue's two inputs as the old configuration produced them."""

from __future__ import annotations

import pytest

from corral.services.fit import Worker, Yarn, YarnApp, standalone_unschedulable, yarn_unschedulable


def yarn(*nms: int, minimum: int = 128, percent: float = 0.5, maximum: int | None = None) -> Yarn:
    return Yarn(nodemanagers=nms, min_allocation_mib=minimum, max_allocation_mib=maximum or max(nms), am_percent=percent)


def spark(am: int, executor: int, name: str = "step") -> YarnApp:
    return YarnApp(name, am, (("executor", executor),))


@pytest.mark.parametrize(("minimum", "request_mib", "granted"), [(256, 896, 1024), (128, 896, 896), (128, 1, 128),
                                                                (1024, 1025, 2048), (256, 256, 256)])
def test_requests_are_rounded_up_to_the_minimum_allocation(minimum: int, request_mib: int, granted: int) -> None:
    assert yarn(4096, minimum=minimum).normalize(request_mib) == granted


def test_the_am_limit_is_the_share_of_the_cluster_rounded_up() -> None:
    assert yarn(3072, minimum=256).am_limit_mib == 1536
    assert yarn(3072, 3072, percent=0.55).am_limit_mib == 3456  # 3379.2 -> 27 x 128
    assert yarn(1000, minimum=128, percent=0.1).am_limit_mib == 128


def test_issue_input_local_medium_the_step_stays_accepted() -> None:
    # The old sizes: 512 MiB AMs + 384 overhead, 256 MiB allocation unit, half for AMs, one
    # local.medium NodeManager (3072 MiB), the SQL endpoint's AM already running.
    old = yarn(3072, minimum=256, percent=0.5)
    endpoint = spark(896, 2432, "the SQL endpoint")
    reason = yarn_unschedulable(old, spark(896, 2432), (endpoint,))
    assert reason is not None and "Queue's AM resource limit exceeded" in reason and "1536 MiB" in reason


def test_issue_input_local_large_the_executor_never_fits() -> None:
    old = yarn(6144, minimum=256, percent=0.5)
    endpoint = spark(896, 5119, "the SQL endpoint")
    reason = yarn_unschedulable(old, spark(896, 4654 + 465), (endpoint,))
    assert reason is not None and "executor (5120 MiB) fits on no NodeManager" in reason


def test_the_first_am_of_an_empty_queue_is_always_activated() -> None:
    assert yarn_unschedulable(yarn(3072, percent=0.1), spark(1024, 1024)) is None


def test_a_container_above_the_maximum_allocation_is_refused() -> None:
    reason = yarn_unschedulable(yarn(3072, 3072), spark(640, 4000))
    assert reason is not None and "maximum-allocation-mb" in reason


def test_the_ams_may_land_anywhere() -> None:
    endpoint = YarnApp("the SQL endpoint", 640)
    # One node: both AMs are on it, and the executor must fit beside them.
    assert yarn_unschedulable(yarn(3072), spark(640, 1792), (endpoint,)) is None
    assert yarn_unschedulable(yarn(3072), spark(640, 1920), (endpoint,)) is not None
    # Two nodes: whether both AMs share one or not, some node has room for 2432 MiB.
    assert yarn_unschedulable(yarn(3072, 3072), spark(640, 2432), (endpoint,)) is None
    # ... but not for 2560: with one AM on each node, neither has it.
    reason = yarn_unschedulable(yarn(3072, 3072), spark(640, 2560), (endpoint,))
    assert reason is not None and "at most 2432 MiB left free" in reason


def test_nodes_of_different_sizes() -> None:
    endpoint = YarnApp("the SQL endpoint", 640)
    # A big TASK node always has room even with both AMs on it.
    assert yarn_unschedulable(yarn(1536, 6144), spark(640, 4864), (endpoint,)) is None
    assert yarn_unschedulable(yarn(1536, 6144), spark(640, 4992), (endpoint,)) is not None


def test_every_kind_of_container_must_fit() -> None:
    mr = YarnApp("MapReduce job", 1536, (("map", 1536), ("reduce", 2048)))
    reason = yarn_unschedulable(yarn(3072), mr)
    assert reason is not None and reason.startswith("its reduce (2048 MiB)")


def test_an_am_that_fits_no_node_is_named() -> None:
    reason = yarn_unschedulable(yarn(1024, 1024, maximum=2048), spark(1536, 512))
    assert reason == "its ApplicationMaster (1536 MiB) does not fit on any NodeManager"


def test_standalone_needs_one_worker_with_the_memory_and_the_cores() -> None:
    workers = (Worker(3072, 2), Worker(6144, 4))
    assert standalone_unschedulable(workers, 6144, 4) is None
    assert standalone_unschedulable(workers, 3072, 2) is None
    reason = standalone_unschedulable(workers, 6145, 1)
    assert reason is not None and "Initial job has not accepted any resources" in reason
    assert standalone_unschedulable(workers, 1024, 8) is not None
