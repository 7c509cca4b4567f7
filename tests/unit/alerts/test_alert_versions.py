"""Two writers of one alert at once (the sampler's evaluation, a rule being disabled): the
later one's transaction fails instead of overwriting the earlier one's state."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from corral.alerts.engine import ensure_builtins
from corral.control.context import ControlPlane
from corral.store.monitoring import Alert, AlertRule


def test_a_stale_alert_row_is_not_written_over(cp: ControlPlane) -> None:
    ensure_builtins(cp.store)
    with cp.store.session() as s:
        rule = s.scalars(select(AlertRule).where(AlertRule.name == "MissingBlocks")).one()
        s.add(Alert(id="al-1", rule_id=rule.id, cluster_id="c-1", state="FIRING", summary="x", labels={},
                    pending_since=1.0, fired_at=1.0, updated_at=1.0))
    with pytest.raises(StaleDataError):
        with cp.store.session() as evaluation:
            seen = evaluation.get(Alert, "al-1")
            with cp.store.session() as disabling:  # resolves it meanwhile
                disabling.get(Alert, "al-1").state = "RESOLVED"  # type: ignore[union-attr]
            seen.value = 5.0  # type: ignore[union-attr]  # the evaluation, from what it read before
    with cp.store.session() as s:
        assert s.get(Alert, "al-1").state == "RESOLVED"  # type: ignore[union-attr]
