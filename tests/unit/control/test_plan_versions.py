"""The plan versions every waiting long poll shares (corral.control.plan_versions): one read
for all callers within MAX_AGE_SECONDS, a bump seen after it, ended clusters unknown."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from corral.control.context import ControlPlane
from corral.control.plan_versions import MAX_AGE_SECONDS, PlanVersions
from corral.store.models import Cluster, bump_plan_version
from tests.unit.control.test_agents import setup_cluster


def _board_reads(cp: ControlPlane) -> list[str]:
    """Every read of all live clusters' versions from here on."""
    seen: list[str] = []

    @event.listens_for(cp.store.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "NOT IN" in statement:
            seen.append(statement)

    return seen


def test_callers_within_the_age_share_one_read_and_a_later_one_sees_a_bump(cp: ControlPlane) -> None:
    cid, _, _ = setup_cluster(cp)
    with cp.store.session() as s:
        stored = s.get(Cluster, cid).plan_version  # type: ignore[union-attr]
    now = [100.0]
    board = PlanVersions(cp.store, clock=lambda: now[0])
    reads = _board_reads(cp)

    async def scenario() -> tuple[list[int | None], int | None, int | None]:
        first = await asyncio.gather(*(board.version(cid) for _ in range(50)))
        with cp.store.session() as s:
            bump_plan_version(s, s.get(Cluster, cid))  # type: ignore[arg-type]
        now[0] += MAX_AGE_SECONDS / 2
        within = await board.version(cid)
        now[0] += MAX_AGE_SECONDS
        return first, within, await board.version(cid)

    first, within, later = asyncio.run(scenario())
    assert first == [stored] * 50 and len(reads) == 2  # 50 callers, two reads: the first, one after the age
    assert within == stored and later == stored + 1


def test_an_ended_or_unknown_cluster_is_not_known(cp: ControlPlane) -> None:
    cid, _, _ = setup_cluster(cp)
    with cp.store.session() as s:
        s.get(Cluster, cid).status = "TERMINATED"  # type: ignore[union-attr]
    board = PlanVersions(cp.store)
    assert asyncio.run(board.version(cid)) is None
    assert asyncio.run(board.version("c-nope")) is None
