"""Reading a cluster spec file (YAML or JSON) and merging command-line flags over it."""

from __future__ import annotations

import copy
import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corral.cli.ship import absolute_args


class SpecFileError(Exception):
    pass


def load_spec_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecFileError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecFileError(f"{path}: a cluster spec must be a mapping (name, node_groups, ...), got {type(data).__name__}")
    _keep_property_text(data, yaml.load(text, Loader=yaml.BaseLoader))  # noqa: S506 - BaseLoader builds only str/list/dict
    # Relative script and step file paths are relative to the spec file, wherever the
    # command runs (symbolic links kept: a file's name is what the job sees).
    for action in data.get("bootstrap_actions") or []:
        if isinstance(action, dict) and isinstance(action.get("path"), str) and not Path(action["path"]).is_absolute():
            action["path"] = os.path.abspath(path.parent / action["path"])
    for step in data.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("args"), list):
            step["args"] = absolute_args(step.get("type"), step["args"], path.parent.absolute())
    return data


def _keep_property_text(data: dict[str, Any], raw: Any) -> None:
    """Configuration values as written: YAML would read ``010`` as 8, ``1e3`` as 1000.0 and
    ``0x1F`` as 31, but every Hadoop and Spark file takes text, and the text is what the
    user meant. Numbers and dates take their source text (``raw``: the same document read
    with every scalar as a string); booleans and null keep YAML's reading."""
    configs, raw_configs = data.get("configurations"), raw.get("configurations") if isinstance(raw, dict) else None
    if not isinstance(configs, list) or not isinstance(raw_configs, list) or len(configs) != len(raw_configs):
        return
    for conf, raw_conf in zip(configs, raw_configs):
        props = conf.get("properties") if isinstance(conf, dict) else None
        raw_props = raw_conf.get("properties") if isinstance(raw_conf, dict) else None
        if not isinstance(props, dict) or not isinstance(raw_props, dict):
            continue
        for key, value in list(props.items()):
            text = raw_props.get(str(key))
            if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool) and isinstance(text, str):
                props[key] = text


@dataclass
class SpecFlags:
    name: str | None = None
    release: str | None = None
    services: list[str] = field(default_factory=list)
    provider: str | None = None  # local or ssh
    master_type: str | None = None
    core_count: int | None = None
    core_type: str | None = None
    task_count: int | None = None
    task_type: str | None = None
    bootstrap: list[Path] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)  # classification:key=value
    auto_terminate: bool = False
    client_token: str | None = None
    idle_timeout: int | None = None  # seconds: auto_termination.idle_timeout


DEFAULT_GROUPS = [
    {"role": "MASTER", "instance_type": "local.small", "count": 1},
    {"role": "CORE", "instance_type": "local.medium", "count": 2},
]
# On ssh a node is a whole host, sized by its own cores and memory unless a type is given.
DEFAULT_SSH_GROUPS = [{"role": "MASTER", "count": 1}, {"role": "CORE", "count": 2}]


def _group(spec: dict[str, Any], role: str) -> dict[str, Any]:
    for group in spec["node_groups"]:
        if isinstance(group, dict) and str(group.get("role", "")).upper() == role:
            return group
    group = {"role": role, "count": 0}
    spec["node_groups"].append(group)
    return group


def merge_flags(base: dict[str, Any] | None, flags: SpecFlags) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(base or {})  # never change the caller's spec
    if flags.provider:
        spec["provider"] = flags.provider
    if "node_groups" not in spec:
        defaults = DEFAULT_SSH_GROUPS if spec.get("provider") == "ssh" else DEFAULT_GROUPS
        spec["node_groups"] = [dict(g) for g in defaults]
    if not isinstance(spec["node_groups"], list):
        raise SpecFileError("node_groups must be a list")
    if flags.name:
        spec["name"] = flags.name
    spec.setdefault("name", "corral-cluster")
    if flags.release:
        spec["release"] = flags.release
    if flags.services:
        spec["services"] = [s.strip() for item in flags.services for s in item.split(",") if s.strip()]
    for role, itype, count in (("MASTER", flags.master_type, None), ("CORE", flags.core_type, flags.core_count),
                               ("TASK", flags.task_type, flags.task_count)):
        if itype is None and count is None:
            continue
        group = _group(spec, role)
        if itype is not None:
            group["instance_type"] = itype
        if count is not None:
            group["count"] = count
        elif "count" not in group or group.get("count") == 0:
            group["count"] = 1
    for path in flags.bootstrap:
        spec.setdefault("bootstrap_actions", []).append({"path": os.path.abspath(path.expanduser())})
    for prop in flags.properties:
        classification, sep, assignment = prop.partition(":")
        key, eq, value = assignment.partition("=")
        if not sep or not eq or not key:
            raise SpecFileError(f"--property {prop!r}: expected CLASSIFICATION:KEY=VALUE, e.g. spark-defaults:spark.executor.memory=2g")
        configs = spec.setdefault("configurations", [])
        target = next((c for c in configs if c.get("classification") == classification), None)
        if target is None:
            target = {"classification": classification, "properties": {}}
            configs.append(target)
        target.setdefault("properties", {})[key] = value
    if flags.auto_terminate:
        spec["auto_terminate"] = True
    if flags.client_token:
        spec["client_token"] = flags.client_token
    if flags.idle_timeout is not None:
        spec["auto_termination"] = {"idle_timeout": flags.idle_timeout}
    return spec
