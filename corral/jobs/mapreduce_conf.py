"""What a MapReduce step's own ``-D key=value`` options (HADOOP_JAR, STREAMING) ask of the
cluster, and whether YARN could ever run the job they size (``corral.services.sizing``)."""

from __future__ import annotations

from corral.errors import FieldError
from corral.jobs.files import GenericOption, generic_option
from corral.services import sizing
from corral.services.base import ClusterView


def d_option(option: GenericOption) -> tuple[str, str] | None:
    """``-D key=value`` (or ``-Dkey=value``) as GenericOptionsParser reads it: key and value."""
    if option.name != "D" or "=" not in option.value:
        return None
    key, _, value = option.value.partition("=")
    return key.strip(), value


def job_fit_errors(own: dict[str, tuple[str, int]], cluster: ClusterView, props: dict[str, dict[str, str]],
                   kind: str) -> list[FieldError]:
    """Refuse a job whose containers, sized by the effective ``mapred-site`` and the step's
    own settings ``own`` (key -> (value, index of the argument)), could never be placed,
    naming the argument that sizes them."""
    sizes = {k for _, k in sizing.MR_KEYS} | {k for k, _ in sizing.MR_VCORE_KEYS}
    for key, (value, at) in own.items():
        if key in sizes and not value.strip().isdigit():
            return [FieldError(("args", at), f"{key} must be a whole number (MiB or vcores), got {value!r}")]
    try:
        found = sizing.mapreduce_step_unschedulable(cluster, props, {k: v for k, (v, _) in own.items()})
    except ValueError as exc:  # the cluster's own mapred-site
        found = None, str(exc)
    if found is None:
        return []
    key, reason = found
    at = own[key][1] if key in own else None
    return [FieldError(("args", at) if at is not None else ("args",), f"this {kind} step could never run: {reason}")]


def leading_d_options(args: list[str], start: int) -> dict[str, tuple[str, int]]:
    """The ``-D`` settings among the generic options at the start of ``args[start:]``
    (where ToolRunner reads them: ``corral.jobs.files.leading_generic_options``)."""
    own: dict[str, tuple[str, int]] = {}
    i = start
    while i < len(args) and args[i] != "--":
        option = generic_option(args, i)
        if not isinstance(option, GenericOption):
            break
        setting = d_option(option)
        if setting:
            own[setting[0]] = (setting[1], option.value_index)
        i = option.next_index
    return own
