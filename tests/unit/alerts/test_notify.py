"""Deliveries to real HTTP receivers on 127.0.0.1: exactly one firing and one resolved
body in Alertmanager's webhook shape; a 500 is retried with backoff and each attempt's
outcome recorded; a refused or silent webhook is retried while another's notifications
arrive at once; a 4xx is not retried; a resolved notification waits for its firing one."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from sqlalchemy import select

from corral.alerts.engine import AlertEngine, ensure_builtins
from corral.alerts.notify import DeliverySender, backoff, fingerprint
from corral.control import alerts as control
from corral.control.context import ControlPlane
from corral.store.models import Event
from corral.store.monitoring import AlertDelivery
from tests.unit.alerts.helpers import EXTERNAL, alerts, cluster_row, deliveries, sample, up_cluster
from tests.webhook_receiver import receiving, refusing_port, silent_port


class Clock:
    def __init__(self, now: float = 2_000_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(cp: ControlPlane, clock: Clock) -> Iterator[AlertEngine]:
    made = AlertEngine(cp.store, EXTERNAL, clock=clock)
    ensure_builtins(cp.store)
    yield made
    made.stop()


def _send(sender: DeliverySender) -> None:
    sender.tick()
    sender.wait_idle(20)


def _fire_and_resolve(cp: ControlPlane, engine: AlertEngine, clock: Clock, cid: str) -> None:
    cluster = cluster_row(cp, cid)
    engine.on_sample(cp, cluster, sample(clock.now, MissingBlocks=2))
    _send(engine.sender)
    clock.now += 10
    engine.on_sample(cp, cluster, sample(clock.now, MissingBlocks=0))
    _send(engine.sender)


def test_one_firing_and_one_resolved_body_in_alertmanager_s_shape(cp: ControlPlane, engine: AlertEngine,
                                                                  clock: Clock) -> None:
    cid = up_cluster(cp)
    with receiving() as receiver:
        control.add_webhook(cp, receiver.url, name="am")
        cluster = cluster_row(cp, cid)
        started = clock.now
        for value in (2, 3, 3):  # still firing: no new notification
            engine.on_sample(cp, cluster, sample(clock.now, MissingBlocks=value))
            _send(engine.sender)
            clock.now += 10
        engine.on_sample(cp, cluster, sample(clock.now, MissingBlocks=0))
        _send(engine.sender)
        engine.on_sample(cp, cluster, sample(clock.now + 10, MissingBlocks=0))
        _send(engine.sender)
        bodies = receiver.wait_for(2)
        time.sleep(0.2)
        assert len(receiver.bodies) == 2
    firing, resolved = bodies
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    for body in bodies:
        assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                             "commonLabels", "commonAnnotations", "externalURL", "alerts"}
        assert (body["version"], body["receiver"], body["externalURL"], body["truncatedAlerts"]) == (
            "4", "am", EXTERNAL, 0)
        assert body["groupLabels"] == {"alertname": "MissingBlocks", "cluster_id": cid}
        assert body["groupKey"] == f'{{}}:{{alertname="MissingBlocks", cluster_id="{cid}"}}'
        [item] = body["alerts"]
        assert set(item) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert item["labels"] == {"alertname": "MissingBlocks", "cluster_id": cid, "cluster_name": "unit",
                                  "severity": "critical", "metric": "MissingBlocks"}
        assert item["fingerprint"] == fingerprint(item["labels"]) and len(item["fingerprint"]) == 16
        assert item["generatorURL"] == f"{EXTERNAL}/api/v1/alerts/{alerts(cp)[0].id}"
        assert "missing blocks" in item["annotations"]["summary"]
        assert item["annotations"]["description"].startswith("MissingBlocks > 0")
    assert firing["alerts"][0]["startsAt"] == "2033-05-18T03:33:20.000Z" == resolved["alerts"][0]["startsAt"]
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["alerts"][0]["endsAt"] == "2033-05-18T03:33:50.000Z"
    assert started == 2_000_000_000.0
    assert [(d.state, d.attempts, d.response_code) for d in deliveries(cp)] == [("DELIVERED", 1, 200)] * 2


def test_fingerprint_is_prometheus_label_set_fingerprint() -> None:
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64's offset basis: prometheus/common's empty set
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"}) != fingerprint({"a": "2", "b": "1"})


def test_a_500_is_retried_with_backoff_and_each_attempt_recorded(cp: ControlPlane, engine: AlertEngine,
                                                                 clock: Clock) -> None:
    cid = up_cluster(cp)
    with receiving([500, 503]) as receiver:
        control.add_webhook(cp, receiver.url)
        engine.on_sample(cp, cluster_row(cp, cid), sample(clock.now, MissingBlocks=1))
        created = clock.now
        _send(engine.sender)
        [d] = deliveries(cp)
        assert (d.state, d.attempts, d.response_code, d.last_error) == ("PENDING", 1, 500, "HTTP 500 Internal Server Error")
        assert d.next_attempt_at == created + backoff(1) == created + 1
        _send(engine.sender)  # not due yet
        assert deliveries(cp)[0].attempts == 1 and len(receiver.bodies) == 1
        clock.now = created + 1
        _send(engine.sender)
        [d] = deliveries(cp)
        assert (d.state, d.attempts, d.response_code, d.next_attempt_at) == ("PENDING", 2, 503, created + 1 + 2)
        clock.now = created + 3
        _send(engine.sender)
        [d] = deliveries(cp)
        assert (d.state, d.attempts, d.response_code, d.last_error, d.delivered_at) == (
            "DELIVERED", 3, 200, None, created + 3)
        assert len(receiver.bodies) == 3 and all(b["status"] == "firing" for b in receiver.bodies)


def test_a_refused_webhook_is_retried_while_another_is_delivered_at_once(cp: ControlPlane, engine: AlertEngine,
                                                                        clock: Clock) -> None:
    cid = up_cluster(cp)
    with receiving() as receiver, refusing_port() as dead:
        control.add_webhook(cp, dead, name="dead")
        control.add_webhook(cp, receiver.url, name="live")
        _fire_and_resolve(cp, engine, clock, cid)
        assert [b["status"] for b in receiver.wait_for(2)] == ["firing", "resolved"]
        hooks = {w.name: w.id for w in control.list_webhooks(cp)}
        dead_rows = [d for d in deliveries(cp) if d.webhook_id == hooks["dead"]]
        assert [(d.status, d.state) for d in dead_rows] == [("firing", "PENDING"), ("resolved", "PENDING")]
        assert dead_rows[0].attempts == 2 and dead_rows[1].attempts == 0  # resolved waits behind its firing
        assert "ConnectError" in (dead_rows[0].last_error or "") and "s3cr3t" not in (dead_rows[0].last_error or "")
        waits = []
        for _ in range(4):
            clock.now = deliveries(cp)[0].next_attempt_at
            before = clock.now
            _send(engine.sender)
            waits.append(deliveries(cp)[0].next_attempt_at - before)
        assert waits == [4.0, 8.0, 16.0, 32.0]  # doubling from 1 s
    engine.sender.give_up = 0  # past its bound: the next failure gives up
    clock.now = deliveries(cp)[0].next_attempt_at
    _send(engine.sender)
    dead_rows = [d for d in deliveries(cp) if d.webhook_id == hooks["dead"]]
    assert dead_rows[0].state == "FAILED"
    with cp.store.session() as s:
        failed = list(s.scalars(select(Event).where(Event.code == "ALERT_DELIVERY_FAILED")))
    assert len(failed) >= 1 and "s3cr3t" not in failed[0].message and "***" in failed[0].message


def test_a_silent_webhook_holds_one_worker_and_delays_no_other(cp: ControlPlane, engine: AlertEngine,
                                                              clock: Clock) -> None:
    sender = DeliverySender(cp.store, EXTERNAL, clock, timeout=3.0)
    cid = up_cluster(cp)
    try:
        with receiving() as receiver, silent_port() as silent:
            control.add_webhook(cp, silent, name="silent")
            control.add_webhook(cp, receiver.url, name="live")
            engine.on_sample(cp, cluster_row(cp, cid), sample(clock.now, MissingBlocks=1))
            started = time.monotonic()
            assert sender.tick() == 2
            assert len(receiver.wait_for(1, timeout=2.0)) == 1
            assert time.monotonic() - started < 2.0  # not behind the silent one's 3 s timeout
            hooks = {w.name: w.id for w in control.list_webhooks(cp)}
            # The live job has posted; its row is marked SENT a moment later (its own commit).
            while any(d.state == "PENDING" for d in deliveries(cp) if d.webhook_id == hooks["live"]):
                assert time.monotonic() - started < 2.5, "the live delivery was never marked SENT"
                time.sleep(0.02)
            assert sender.tick() == 0  # the silent webhook's job is still in flight: not asked twice
            sender.wait_idle(20)
            silent_row = next(d for d in deliveries(cp) if d.webhook_id == hooks["silent"])
            assert (silent_row.state, silent_row.attempts) == ("PENDING", 1)
            assert "Timeout" in (silent_row.last_error or "")
    finally:
        sender.stop()


def test_a_4xx_is_not_retried(cp: ControlPlane, engine: AlertEngine, clock: Clock) -> None:
    cid = up_cluster(cp)
    with receiving([400]) as receiver:
        control.add_webhook(cp, receiver.url)
        engine.on_sample(cp, cluster_row(cp, cid), sample(clock.now, MissingBlocks=1))
        _send(engine.sender)
        clock.now += 3600
        _send(engine.sender)
        assert len(receiver.bodies) == 1
    [d] = deliveries(cp)
    assert (d.state, d.attempts, d.response_code) == ("FAILED", 1, 400)


def test_a_delivery_left_by_a_killed_control_plane_is_sent_by_the_next(cp: ControlPlane, clock: Clock) -> None:
    cid = up_cluster(cp)
    ensure_builtins(cp.store)
    with receiving() as receiver:
        control.add_webhook(cp, receiver.url)
        first = AlertEngine(cp.store, EXTERNAL, clock=clock)
        first.on_sample(cp, cluster_row(cp, cid), sample(clock.now, MissingBlocks=1))
        first.stop()  # gone before it sent anything: the transition and its delivery are in the store
        second = AlertEngine(cp.store, EXTERNAL, clock=clock)
        second.on_sample(cp, cluster_row(cp, cid), sample(clock.now + 10, MissingBlocks=1))  # still firing
        _send(second.sender)
        _send(second.sender)
        second.stop()
        assert [b["status"] for b in receiver.wait_for(1)] == ["firing"]
        time.sleep(0.2)
        assert len(receiver.bodies) == 1
    with cp.store.session() as s:
        assert [d.state for d in s.scalars(select(AlertDelivery))] == ["DELIVERED"]
