"""The store on both backends: migrations, the control-layer flow, and uniqueness guarantees.

Every test here runs on SQLite and on a real PostgreSQL server (``-m "not postgres"`` for
SQLite only).
"""

from __future__ import annotations

from pathlib import Path

import threading
import time

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.domain.spec import StepRequest
from corral.errors import Conflict
from corral.providers.local import LocalProvider
from corral.store.db import Store, alembic_config
from corral.store.models import AddressLease, Cluster, Event, Node, NodeGroup, Step, bump_plan_version
from tests.unit.helpers import count_rows, make_spec

TABLES = {"clusters", "node_groups", "nodes", "steps", "events", "operations", "operation_steps", "address_leases",
          "hosts", "api_tokens", "audit_log", "metric_chunks", "alert_rules", "alerts", "alert_webhooks",
          "alert_deliveries"}
# Differences between the models and the migrated schema that predate the comparison below
# (the ORM's EncryptedText over a VARCHAR column; two columns the ORM says are required).
_KNOWN_DRIFT = {("clusters", "agent_token"), ("node_groups", "name"), ("node_groups", "status")}


def test_backend_is_the_one_asked_for(db_url: str, store: Store) -> None:
    expected = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    assert store.engine.dialect.name == expected
    if expected == "postgresql":
        with store.engine.connect() as conn:
            assert conn.execute(text("select current_setting('server_version_num')::int")).scalar_one() >= 100000


def test_migrate_creates_the_schema_and_is_idempotent(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert inspect(store.engine).get_table_names() == []  # a fresh database
        store.migrate()
        store.migrate()  # again: nothing to do, no error
        Store(db_url).migrate()  # and from another process's point of view
        tables = set(inspect(store.engine).get_table_names())
        assert TABLES | {"alembic_version"} == tables
        with store.engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
            assert head is not None and head != "0001"  # 0002 added nodes.error_code
            assert conn.execute(text("select version_num from alembic_version")).scalars().all() == [head]
        assert "error_code" in {c["name"] for c in inspect(store.engine).get_columns("nodes")}
        indexes = {i["name"]: i for i in inspect(store.engine).get_indexes("steps")}
        assert indexes["ix_steps_cluster_seq"]["unique"]
    finally:
        store.dispose()


def test_the_migrations_make_the_schema_the_models_describe(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from corral.store.models import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for group in diff for d in (group if isinstance(group, list) else [group])]
    unexpected = [d for d in flat if not (d[0].startswith("modify_") and (d[2], d[3]) in _KNOWN_DRIFT)]
    assert unexpected == []


def test_a_sqlite_file_gives_the_space_of_deleted_rows_back(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # a file from before Corral set auto_vacuum
        old.execute("CREATE TABLE earlier (a)")
    store = Store(f"sqlite:///{path}")
    store.migrate()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (b BLOB)")
        for _ in range(500):
            conn.exec_driver_sql("INSERT INTO filler VALUES (randomblob(8000))")

    def size() -> int:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    full = size()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM filler")
    store.reclaim_space()
    assert size() < full / 4
    store.dispose()


def test_rows_survive_a_second_migrate(store: Store) -> None:
    with store.session() as s:
        s.add(AddressLease(address="127.99.0.2", holder="n-a", provider="local", created_at=time.time()))
    store.migrate()
    assert count_rows(store, AddressLease) == 1


def test_control_flow(cp_any: ControlPlane) -> None:
    """create with a client token, the idempotent repeat, a conflicting repeat, steps."""
    cp = cp_any
    spec = make_spec(client_token="flow-1", configurations=[
        {"classification": "spark-defaults", "properties": {"spark.executor.cores": 1, "spark.eventLog.enabled": True}}],
        steps=[{"type": "shell", "args": ["echo first"]}])
    cluster, created = clusters.create_cluster(cp, spec)
    assert created
    again, created_again = clusters.create_cluster(cp, make_spec(**spec.model_dump(mode="json")))
    assert (again.id, created_again) == (cluster.id, False)
    with pytest.raises(Conflict):
        clusters.create_cluster(cp, make_spec(client_token="flow-1", name="different"))
    assert count_rows(cp.store, Cluster) == 1
    assert count_rows(cp.store, NodeGroup) == 2
    assert count_rows(cp.store, Node, cluster_id=cluster.id, status="REQUESTED") == 3

    added = steps.add_steps(cp, cluster.id, [StepRequest(type="SHELL", args=["echo second"]),
                                             StepRequest(type="SHELL", args=["echo", "third"])])
    more = steps.add_steps(cp, cluster.id, [StepRequest(type="SHELL", args=["echo fourth"])])
    listed = steps.list_steps(cp, cluster.id)
    assert [s.seq for s in listed] == [0, 1, 2, 3]
    assert [s.id for s in listed[1:]] == [s.id for s in added + more]
    assert [s.args for s in listed] == [["echo first"], ["echo second"], ["echo", "third"], ["echo fourth"]]

    row = clusters.get_cluster(cp, cluster.id)
    # JSON columns round-trip the same way on both backends
    assert row.services == ["spark"]
    assert row.configurations == [{"classification": "spark-defaults",
                                   "properties": {"spark.executor.cores": "1", "spark.eventLog.enabled": "true"}}]
    assert isinstance(row.created_at, float) and abs(row.created_at - time.time()) < 60
    assert steps.cancel_step(cp, cluster.id, listed[3].id).status == "CANCELLED"
    assert [e.code for e in clusters.list_events(cp, cluster.id)] == [
        "CLUSTER_CREATED", "STEP_ADDED", "STEP_ADDED", "STEP_ADDED", "STEP_CANCELLED"]
    assert [s.seq for s in steps.list_steps(cp, cluster.id, ["PENDING"])] == [0, 1, 2]


def test_concurrent_add_steps_get_distinct_positions(cp_any: ControlPlane) -> None:
    cp = cp_any
    cluster, _ = clusters.create_cluster(cp, make_spec())
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        try:
            barrier.wait(5)
            for i in range(3):
                steps.add_steps(cp, cluster.id, [StepRequest(type="SHELL", args=[f"echo {n}-{i}"])])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [s.seq for s in steps.list_steps(cp, cluster.id)] == list(range(12))


def test_address_lease_is_unique(store: Store) -> None:
    now = time.time()
    with store.session() as s:
        s.add(AddressLease(address="127.99.0.2", holder="n-first", provider="local", created_at=now))
    with pytest.raises(IntegrityError):  # the same address to a second node
        with store.session() as s:
            s.add(AddressLease(address="127.99.0.2", holder="n-second", provider="local", created_at=now))
    with pytest.raises(IntegrityError):  # a second address to the same node
        with store.session() as s:
            s.add(AddressLease(address="127.99.0.3", holder="n-first", provider="local", created_at=now))
    with store.session() as s:
        assert [(lease.address, lease.holder) for lease in s.scalars(select(AddressLease))] == [("127.99.0.2", "n-first")]


def test_step_positions_are_unique_per_cluster(cp_any: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp_any, make_spec(steps=[{"type": "shell", "args": ["true"]}]))
    with pytest.raises(IntegrityError):
        with cp_any.store.session() as s:
            s.add(Step(id="s-dupseq00", cluster_id=cluster.id, seq=0, name="dup", type="SHELL", args=["true"],
                       artifacts=[], action_on_failure="CONTINUE", status="PENDING", dispatched=False,
                       created_at=time.time()))
    assert count_rows(cp_any.store, Step) == 1


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        with store.session() as s:
            s.add(Event(cluster_id="c-nothere", time=time.time(), level="INFO", code="X", message="orphan"))


def test_local_provider_leases_distinct_addresses(cp_any: ControlPlane) -> None:
    provider = LocalProvider(cp_any.settings, cp_any.store)
    first = provider._lease_address("n-one")
    second = provider._lease_address("n-two")
    assert first != second
    assert provider._lease_address("n-one") == first  # asking again returns the node's lease
    assert not first.endswith(".1") and first.startswith("127.99.")
    provider._release_address("n-one")
    assert count_rows(cp_any.store, AddressLease) == 1


def test_plan_version_bumps_from_interleaved_sessions_all_count(cp_any: ControlPlane) -> None:
    """The reconciler reads a cluster, the API bumps its plan meanwhile, then the reconciler
    bumps it too: both bumps must land (a lost one leaves an agent on a stale plan)."""
    cluster, _ = clusters.create_cluster(cp_any, make_spec())
    start = clusters.get_cluster(cp_any, cluster.id).plan_version
    with cp_any.store.session() as reconciler:
        seen = reconciler.get(Cluster, cluster.id)
        assert seen is not None and seen.plan_version == start
        with cp_any.store.session() as api:
            other = api.get(Cluster, cluster.id)
            assert other is not None
            assert bump_plan_version(api, other) == start + 1
        assert bump_plan_version(reconciler, seen) == start + 2
        assert seen.plan_version == start + 2
    assert clusters.get_cluster(cp_any, cluster.id).plan_version == start + 2


def test_step_timeout_failure_code_and_application_ids_round_trip(cp_any: ControlPlane) -> None:
    """Migration 0005's columns on both backends."""
    cluster, _ = clusters.create_cluster(cp_any, make_spec())
    step = steps.add_steps(cp_any, cluster.id, [StepRequest(type="SHELL", args=["true"], timeout=604800)])[0]
    with cp_any.store.session() as s:
        row = s.get(Step, step.id)
        assert row is not None and row.timeout_seconds == 604800 and not row.diagnosed
        row.failure_code, row.spark_application_ids, row.diagnosed = "TIMEOUT", ["app-20261201203000-0000"], True
    again = steps.get_step(cp_any, cluster.id, step.id)
    assert (again.timeout_seconds, again.failure_code, again.spark_application_ids, again.diagnosed) == (
        604800, "TIMEOUT", ["app-20261201203000-0000"], True)
