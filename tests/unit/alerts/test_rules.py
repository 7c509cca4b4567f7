"""Alert rules as data: validation naming each field, comparisons in symbols and EMR's or
CloudWatch's words, ``for`` durations, message templates, event codes, the built-ins,
and webhook URLs shown masked."""

from __future__ import annotations

import pytest

from corral.alerts import rules
from corral.alerts.rules import BUILTINS, RuleSpec, Severity, event_codes, parse_for, source_code, validate
from corral.alerts.urls import check_url, masked, scrub
from corral.errors import ValidationFailed


def _fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> set[str]:
    return {str(e.loc[0]) for e in exc.value.errors}


def test_a_metric_rule_is_normalized() -> None:
    spec = validate("Full", metric="HDFSUtilization", comparison="GREATER_THAN_OR_EQUAL", threshold="85",
                    for_="2m", severity="CRITICAL", message="HDFS {value:.1f}% full on {cluster_name}")
    assert (spec.metric, spec.comparison, spec.threshold, spec.for_seconds, spec.severity) == (
        "HDFSUtilization", ">=", 85.0, 120.0, Severity.critical)
    assert spec.kind == "metric" and not spec.per_node
    assert spec.expression() == "HDFSUtilization >= 85 for 2m"
    assert validate("Cpu", metric="CPUUtilization", comparison="GreaterThanThreshold", threshold=90).per_node


@pytest.mark.parametrize(("word", "symbol"), [
    (">", ">"), ("LESS_THAN", "<"), ("less_than_or_equal", "<="), ("EQUAL", "=="), ("NOT_EQUAL", "!="),
    ("=", "=="), ("LessThanOrEqualToThreshold", "<="), ("GREATER_THAN", ">")])
def test_comparisons_in_words_become_symbols(word: str, symbol: str) -> None:
    assert rules.normalize_comparison(word) == symbol


@pytest.mark.parametrize(("comparison", "threshold", "value", "breached"), [
    (">", 0.0, 1.0, True), (">", 0.0, 0.0, False), (">=", 0.0, 0.0, True), ("<", 100.0, 99.9, True),
    ("<", 100.0, 100.0, False), ("<=", 100.0, 100.0, True), ("==", 0.0, 0.0, True), ("==", 0.0, 0.5, False),
    ("!=", 0.0, 0.5, True), ("!=", 0.0, 0.0, False)])
def test_each_comparison_holds_as_its_symbol_says(comparison: str, threshold: float, value: float,
                                                  breached: bool) -> None:
    spec = RuleSpec("R", metric="MissingBlocks", comparison=comparison, threshold=threshold)
    assert spec.breached(value) is breached


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"metric": "NoSuchMetric", "comparison": ">", "threshold": 1}, "metric"),
    ({"comparison": ">", "threshold": 1}, "metric"),
    ({"metric": "MissingBlocks", "comparison": "bigger", "threshold": 1}, "comparison"),
    ({"metric": "MissingBlocks", "threshold": 1}, "comparison"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": "lots"}, "threshold"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": float("nan")}, "threshold"),
    ({"metric": "MissingBlocks", "comparison": ">"}, "threshold"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "for_": "5 parsecs"}, "for"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "for_": -1}, "for"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "for_": "8d"}, "for"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "severity": "page"}, "severity"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "message": "{nope}"}, "message"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "message": "{value:q}"}, "message"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "message": "{value:>2000000000}"}, "message"),
    ({"metric": "MissingBlocks", "comparison": ">", "threshold": 1, "message": "{value:.999f}"}, "message"),
    ({"event_code": "step failed"}, "event_code"),
    ({"event_code": "ALERT_FIRING"}, "event_code"),
    ({"event_code": "STEP_FAILED", "metric": "MissingBlocks"}, "metric"),
])
def test_a_bad_rule_is_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate("Rule", **kwargs)  # type: ignore[arg-type]
    assert field in _fields(exc), exc.value


def test_every_fault_is_named_at_once_and_a_bad_name_too() -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate("9 lives", metric="Nope", comparison="~", threshold=None)
    assert _fields(exc) == {"name", "metric", "comparison", "threshold"}


@pytest.mark.parametrize(("text", "seconds"), [(None, 0.0), ("", 0.0), (0, 0.0), (90, 90.0), ("90s", 90.0),
                                               ("2m", 120.0), ("1h", 3600.0), ("1.5m", 90.0), ("7d", 604800.0)])
def test_for_durations(text: object, seconds: float) -> None:
    assert parse_for(text) == seconds  # type: ignore[arg-type]


def test_event_codes_include_the_new_state_of_a_state_change() -> None:
    assert event_codes("CLUSTER_STATE_CHANGED", "TERMINATING -> TERMINATED_WITH_ERRORS: step failed") == {
        "CLUSTER_STATE_CHANGED", "CLUSTER_TERMINATED_WITH_ERRORS"}
    assert event_codes("CLUSTER_STATE_CHANGED", "WAITING -> RUNNING") == {"CLUSTER_STATE_CHANGED", "CLUSTER_RUNNING"}
    assert event_codes("STEP_FAILED", "step s-1 'x' is FAILED: a -> b") == {"STEP_FAILED"}
    assert source_code("CLUSTER_TERMINATED_WITH_ERRORS") == "CLUSTER_STATE_CHANGED"
    assert source_code("CLUSTER_CREATED") == "CLUSTER_CREATED"  # no such state: the code itself
    assert source_code("NODE_LOST") == "NODE_LOST"


def test_messages_are_filled_in_and_a_missing_field_shows_a_dash() -> None:
    fields = {"value": 3.0, "node_id": None, "cluster_name": "prod"}
    assert rules.render("{value:g} missing on {cluster_name} ({node_id})", fields, "d") == "3 missing on prod (-)"
    assert rules.render(None, fields, "the default") == "the default"


def test_the_builtins_are_the_issue_s_defaults_and_valid() -> None:
    by_name = {b.spec.name: b.spec for b in BUILTINS}
    assert by_name["MissingBlocks"].expression() == "MissingBlocks > 0"
    assert by_name["CorruptBlocks"].expression() == "CorruptBlocks > 0"
    assert by_name["DataNodesDown"].expression() == "LiveDataNodes < 100 for 2m"
    assert by_name["HDFSUtilizationHigh"].expression().startswith("HDFSUtilization > 85")
    assert {s.event_code for s in by_name.values() if s.event_code} == {
        "NODE_LOST", "STEP_FAILED", "CLUSTER_TERMINATED_WITH_ERRORS"}
    for b in BUILTINS:  # each passes the same validation as a user's rule, and its id fits the column
        assert len(b.id) <= 16
        again = validate(b.spec.name, metric=b.spec.metric, comparison=b.spec.comparison, threshold=b.spec.threshold,
                         for_=b.spec.for_seconds if b.spec.metric else None, severity=b.spec.severity.value,
                         message=b.spec.message, event_code=b.spec.event_code)
        assert again == b.spec


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http:///nohost", "http://h:99999/",
                                 "http://h/x#frag", "http://h/a b", ""])
def test_only_http_urls_with_a_host_are_webhooks(url: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_url(url)
    assert "secret" not in str(exc.value)


def test_urls_are_shown_without_their_secrets() -> None:
    url = "https://bot:pa55word@hooks.example.com:8443/services/T0/B0/XXXXSECRET?token=abc123"
    shown = masked(url)
    assert shown == "https://***@hooks.example.com:8443/***?***"
    for secret in ("pa55word", "XXXXSECRET", "abc123", "bot"):
        assert secret not in shown
    # A token anywhere in the path: Telegram's first segment, ntfy's topic.
    telegram = "https://api.telegram.org/bot123456:AAHsecretTOKEN/sendMessage"
    assert masked(telegram) == "https://api.telegram.org/***"
    assert masked("https://ntfy.sh/mysecrettopic") == "https://ntfy.sh/***"
    assert masked("http://127.0.0.1:9093/") == "http://127.0.0.1:9093/"
    assert "abc123" not in scrub(f"ConnectError: cannot reach {url}", url)
    said = scrub("HTTP 404 for /bot123456:AAHsecretTOKEN/sendMessage (bot123456:AAHsecretTOKEN)", telegram)
    assert "AAHsecretTOKEN" not in said
    assert check_url("https://h.example/x?y=1") == "https://h.example/x?y=1"
