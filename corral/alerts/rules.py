"""Alert rules as data: validation, comparisons, ``for`` durations, message templates and
the built-in defaults. Pure: no store, no clock.

A **metric rule** compares one metric of every sample (``corral.metrics.samples``: EMR's
CloudWatch names, e.g. ``MissingBlocks``; a ``NodeMetric`` such as ``CPUUtilization`` is
compared per node, one alert per node) with a threshold, and fires once the comparison
has held for ``for_seconds`` (Prometheus' ``for``). An **event rule** fires once for each
new cluster event with its code (``STEP_FAILED``, ``NODE_LOST``; and the derived
``CLUSTER_<STATE>`` codes of ``CLUSTER_STATE_CHANGED`` events, e.g.
``CLUSTER_TERMINATED_WITH_ERRORS``), and never resolves.

Comparisons are written ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``, or with EMR's
autoscaling words (``GREATER_THAN``, ``LESS_THAN_OR_EQUAL``, ...) or CloudWatch's
(``GreaterThanThreshold``, ...); they are stored as the symbol.
"""

from __future__ import annotations

import math
import operator
import re
import string
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from corral.domain.states import ClusterState
from corral.errors import FieldError, ValidationFailed
from corral.metrics.history import parse_duration
from corral.metrics.samples import NodeMetric, metric_named

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
# EMR's autoscaling ComparisonOperator and CloudWatch's alarm ComparisonOperator names.
COMPARISON_WORDS = {
    "GREATER_THAN": ">", "GREATER_THAN_OR_EQUAL": ">=", "LESS_THAN": "<", "LESS_THAN_OR_EQUAL": "<=",
    "EQUAL": "==", "EQUAL_TO": "==", "NOT_EQUAL": "!=", "=": "==",
    "GREATERTHANTHRESHOLD": ">", "GREATERTHANOREQUALTOTHRESHOLD": ">=", "LESSTHANTHRESHOLD": "<",
    "LESSTHANOREQUALTOTHRESHOLD": "<="}
MAX_FOR_SECONDS = 7 * 86_400.0
MAX_MESSAGE = 1000
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")  # a label value people type: alertname
EVENT_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
STATE_CHANGED = "CLUSTER_STATE_CHANGED"  # "<from> -> <to>[: reason]" (corral.reconcile.clusters.transition)
# Fields a rule's message may name ({value:.1f} etc.); an event rule's also has {event}.
MESSAGE_FIELDS = ("value", "threshold", "metric", "comparison", "for", "node_id", "cluster_id", "cluster_name",
                  "rule", "event")


class Severity(str, Enum):
    critical = "critical"
    warning = "warning"
    info = "info"


@dataclass(frozen=True)
class RuleSpec:
    """A validated rule. Metric rules have ``metric``, ``comparison`` (a symbol of
    ``COMPARISONS``), ``threshold`` and ``for_seconds`` (>= 0, seconds); event rules have
    ``event_code`` only."""

    name: str
    severity: Severity = Severity.warning
    metric: str | None = None
    comparison: str | None = None
    threshold: float | None = None
    for_seconds: float = 0.0
    event_code: str | None = None
    message: str | None = None

    @property
    def kind(self) -> str:
        return "event" if self.event_code else "metric"

    @property
    def per_node(self) -> bool:
        """Whether the metric is a node's (one alert per node) rather than the cluster's."""
        return self.metric is not None and isinstance(metric_named(self.metric), NodeMetric)

    def breached(self, value: float) -> bool:
        assert self.comparison is not None and self.threshold is not None
        return COMPARISONS[self.comparison](value, self.threshold)

    def expression(self) -> str:
        """``MissingBlocks > 0`` (``for 2m`` when it has one) or ``event STEP_FAILED``."""
        if self.event_code:
            return f"event {self.event_code}"
        text = f"{self.metric} {self.comparison} {number(self.threshold)}"
        return text + (f" for {duration(self.for_seconds)}" if self.for_seconds else "")


def number(value: float | None) -> str:
    """3.0 -> '3', 85.25 -> '85.25', None -> 'no data'."""
    return "no data" if value is None else f"{value:g}" if abs(value) < 1e15 else f"{value:.6g}"


def duration(seconds: float) -> str:
    """120 -> '2m', 90 -> '90s', 7200 -> '2h': the shortest exact form."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_for(value: str | float | int | None) -> float:
    """A ``for`` duration: seconds as a number, or ``30s``/``2m``/``1h``/``1d`` text; None is
    0. ValueError when negative, above 7 days, or not a duration."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        raise ValueError("not a duration (e.g. 30s, 2m, 1h)")
    seconds = float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_FOR_SECONDS:
        raise ValueError(f"must be between 0 and {duration(MAX_FOR_SECONDS)}")
    return seconds


def normalize_comparison(text: str) -> str:
    """The symbol of a comparison given as a symbol or a word; ValueError naming the known ones."""
    value = text.strip()
    if value in COMPARISONS:
        return value
    found = COMPARISON_WORDS.get(value.upper())
    if found is None:
        raise ValueError(f"unknown comparison {text!r} (known: {', '.join(COMPARISONS)}, GREATER_THAN, "
                         "GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL, EQUAL, NOT_EQUAL)")
    return found


def source_code(event_code: str) -> str:
    """The stored event code an event rule reads: ``CLUSTER_<STATE>`` is read from
    ``CLUSTER_STATE_CHANGED`` events; any other code is itself."""
    if event_code.startswith("CLUSTER_") and event_code.removeprefix("CLUSTER_") in ClusterState.__members__:
        return STATE_CHANGED
    return event_code


def event_codes(code: str, message: str) -> frozenset[str]:
    """The codes an event matches: its own, and for a state change ``CLUSTER_<new state>``."""
    codes = {code}
    if code == STATE_CHANGED and " -> " in message:
        codes.add("CLUSTER_" + message.split(" -> ", 1)[1].split(":", 1)[0].strip())
    return frozenset(codes)


def render(template: str | None, fields: dict[str, Any], default: str) -> str:
    """The rule's message with its ``{field}`` placeholders filled in (``MESSAGE_FIELDS``);
    ``default`` when there is no message. A value missing for a field shows as ``-``."""
    if not template:
        return default

    class _Fields(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> str:
            return "-"

    values = _Fields({k: v for k, v in fields.items() if v is not None})
    try:
        return string.Formatter().vformat(template, (), values)[:2 * MAX_MESSAGE]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return template  # checked at create time; a value of another type than the sample's (None) shows raw


MAX_FORMAT_WIDTH = 64

def _check_message(message: str) -> None:
    for _, field, spec, _ in string.Formatter().parse(message):
        if field is None:
            continue
        if field not in MESSAGE_FIELDS:
            raise ValueError(f"unknown placeholder {{{field}}} (known: {', '.join('{' + f + '}' for f in MESSAGE_FIELDS)})")
        if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec or "")):
            # {value:>2000000000} would build a 2 GB string now and at every transition.
            raise ValueError(f"{{{field}:{spec}}}: a width or precision above {MAX_FORMAT_WIDTH}")
    sample = {"value": 1.5, "threshold": 1.0, "metric": "M", "comparison": ">", "for": "2m", "node_id": "n-1",
              "cluster_id": "c-1", "cluster_name": "c", "rule": "R", "event": "e"}
    string.Formatter().vformat(message, (), sample)  # a bad format spec ({value:q}) raises ValueError


def validate(name: str, *, metric: str | None = None, comparison: str | None = None,
             threshold: float | str | None = None, for_: str | float | None = None, severity: str | None = None,
             message: str | None = None, event_code: str | None = None) -> RuleSpec:
    """A ``RuleSpec`` from what a user gave; ``ValidationFailed`` naming every field at fault
    (``name``, ``metric``, ``comparison``, ``threshold``, ``for``, ``severity``,
    ``message``, ``event_code``). A rule has either ``event_code`` or all of ``metric``,
    ``comparison`` and ``threshold``."""
    errors: list[FieldError] = []

    def bad(field: str, msg: str) -> None:
        errors.append(FieldError((field,), msg))

    if not isinstance(name, str) or not NAME.match(name):
        bad("name", "must start with a letter and have at most 128 letters, digits or _ . : -")
    level = Severity.warning
    try:
        level = Severity((severity or "warning").strip().lower())
    except ValueError:
        bad("severity", f"unknown severity {severity!r} (known: critical, warning, info)")
    if message is not None:
        if len(message) > MAX_MESSAGE:
            bad("message", f"at most {MAX_MESSAGE} characters")
        else:
            try:
                _check_message(message)
            except ValueError as exc:
                bad("message", str(exc))
    symbol, limit, seconds, code = None, None, 0.0, None
    if event_code is not None:
        code = event_code.strip().upper()
        for field, given in (("metric", metric), ("comparison", comparison), ("threshold", threshold), ("for", for_)):
            if given not in (None, ""):
                bad(field, "an event rule (event_code) has no metric, comparison, threshold or for")
        if not EVENT_CODE.match(code):
            bad("event_code", "must be an event code: capital letters, digits and _ (e.g. STEP_FAILED)")
        elif code.startswith("ALERT_"):
            bad("event_code", "alerts' own events cannot trigger alerts")
    else:
        if not metric:
            bad("metric", "required (or event_code for an event rule)")
        else:
            try:
                metric = metric_named(metric.strip()).value
            except ValueError as exc:
                bad("metric", str(exc))
        if not comparison:
            bad("comparison", "required: one of " + ", ".join(COMPARISONS))
        else:
            try:
                symbol = normalize_comparison(comparison)
            except ValueError as exc:
                bad("comparison", str(exc))
        if threshold is None or threshold == "" or isinstance(threshold, bool):
            bad("threshold", "required: a number")
        else:
            try:
                limit = float(threshold)
                if not math.isfinite(limit):
                    raise ValueError
            except ValueError:
                bad("threshold", f"not a finite number: {threshold!r}")
        try:
            seconds = parse_for(for_)
        except ValueError as exc:
            bad("for", str(exc))
    if errors:
        raise ValidationFailed(errors)
    if code:
        return RuleSpec(name=name, severity=level, event_code=code, message=message)
    return RuleSpec(name=name, severity=level, metric=metric, comparison=symbol, threshold=limit,
                    for_seconds=seconds, message=message)


@dataclass(frozen=True)
class Builtin:
    """A default rule, created global at start when absent, under a fixed id (so two
    control planes starting at once cannot create it twice)."""

    id: str
    spec: RuleSpec


BUILTINS: tuple[Builtin, ...] = (
    Builtin("ar-missingblk", RuleSpec(
        "MissingBlocks", Severity.critical, "MissingBlocks", ">", 0.0, 0.0,
        message="HDFS has {value:g} missing blocks: no live DataNode holds a replica, files have lost data")),
    Builtin("ar-corruptblk", RuleSpec(
        "CorruptBlocks", Severity.critical, "CorruptBlocks", ">", 0.0, 0.0,
        message="HDFS has {value:g} corrupt blocks")),
    Builtin("ar-datanodes", RuleSpec(
        "DataNodesDown", Severity.warning, "LiveDataNodes", "<", 100.0, 120.0,
        message="only {value:.0f}% of the CORE nodes' DataNodes are live")),
    Builtin("ar-nodelost", RuleSpec(
        "NodeLost", Severity.warning, event_code="NODE_LOST", message="{event}")),
    Builtin("ar-hdfsfull", RuleSpec(
        "HDFSUtilizationHigh", Severity.warning, "HDFSUtilization", ">", 85.0, 300.0,
        message="HDFS is {value:.1f}% full")),
    Builtin("ar-stepfail", RuleSpec(
        "StepFailed", Severity.warning, event_code="STEP_FAILED", message="{event}")),
    Builtin("ar-clusterfail", RuleSpec(
        "ClusterFailed", Severity.critical, event_code="CLUSTER_TERMINATED_WITH_ERRORS", message="{event}")),
)
