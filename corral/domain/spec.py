"""The cluster spec users write (YAML or JSON) and the step requests they add.

Pydantic checks shapes and single fields; ``validate_cluster_spec`` checks what needs the
whole spec (group roles and counts, service requirements). Both report the exact field
at fault. Local files (bootstrap scripts, step files) are the client's: a request names
each one's sha256, uploaded before (``PUT /api/v1/artifacts/{sha256}``); the control
plane never reads a path of its own disk for them.
"""

from __future__ import annotations

import re
import unicodedata

from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StringConstraints, ValidationInfo,
                      field_validator, model_validator)

from corral import formats
from corral.domain.catalog import DEFAULT_INSTANCE_TYPE, DEFAULT_RELEASE, INSTANCE_TYPES, RELEASES
from corral.domain.states import ActionOnFailure, NodeRole, StepType
from corral.errors import FieldError, ValidationFailed


def _stringify(value: Any) -> Any:
    """Config properties are strings in every Hadoop/Spark file; accept YAML scalars too
    (not a missing value: ``key:`` in YAML is null, which is refused, not the text "None")."""
    if isinstance(value, dict):
        return {k: (str(v).lower() if isinstance(v, bool) else v if v is None else str(v)) for k, v in value.items()}
    return value


# An uploaded artifact's content hash: 64 lowercase hex digits.
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _no_nul(value: str) -> str:
    """A program's argument or environment value is a C string (execve): it cannot hold NUL."""
    if "\x00" in value:
        raise ValueError("holds a NUL byte, which no program can receive in an argument or its environment")
    return value


# A command-line argument: any text but NUL.
Argument = Annotated[str, AfterValidator(_no_nul)]


def _one_line(value: str) -> str:
    """A name is shown on one line of a table, a log and an event: no control characters
    (Unicode category Cc: NUL, tab, newline, ESC ...) and no line or paragraph separators."""
    for offset, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise ValueError(f"a name cannot hold control characters or line breaks ({char!r} at offset {offset})")
    return value


# A cluster's, step's or bootstrap action's name (EMR's Name, on one line).
DisplayName = Annotated[str, AfterValidator(_one_line)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


# A registered host's name (``corral host add NAME``), and a host label's key or value
# (``rack: r1``): letters, digits, '.', '_' and '-', starting and ending with a letter or
# digit, as Kubernetes label values (at most 63 characters; names up to the column's 128).
HOST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def _host_name(value: str) -> str:
    if not HOST_NAME_PATTERN.match(value):
        raise ValueError(f"not a host name: {value!r} (letters, digits, '.', '_' and '-', at most 128, "
                         "starting and ending with a letter or digit)")
    return value


def _label_text(value: str) -> str:
    if not LABEL_PATTERN.match(value):
        raise ValueError(f"not a label key or value: {value!r} (letters, digits, '.', '_' and '-', at most 63, "
                         "starting and ending with a letter or digit)")
    return value


def label_scalars(value: Any) -> Any:
    """``rack: 1`` in YAML is a number; a label is text (booleans and null stay refused)."""
    if isinstance(value, dict):
        return {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in value.items()}
    return value


HostName = Annotated[str, AfterValidator(_host_name)]
LabelText = Annotated[str, AfterValidator(_label_text)]


GROUP_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class NodeGroupSpec(_Model):
    role: NodeRole
    # The group's name (EMR's instance group name), which ``--group`` takes: by default its
    # role (MASTER, CORE, TASK); a second TASK group needs one of its own.
    name: str | None = Field(default=None, pattern=GROUP_NAME)
    # On the local provider a directory-node's size (default local.medium). On ssh a node
    # is a whole host: absent means the host's own cores and memory; given, it is a floor
    # (only hosts at least that large match) and the uniform size the daemons get.
    instance_type: str | None = None
    count: int = Field(default=1, ge=0, le=64)
    # ssh only: the hosts must carry every one of these labels ...
    host_labels: Annotated[dict[LabelText, LabelText], BeforeValidator(label_scalars)] | None = Field(default=None,
                                                                                                     max_length=16)
    # ... and/or be exactly these registered hosts (one node each; count defaults to their number).
    hosts: list[HostName] | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in INSTANCE_TYPES:
            raise ValueError(f"unknown instance type {value!r} (known: {', '.join(INSTANCE_TYPES)})")
        return value

    @model_validator(mode="after")
    def _count_from_hosts(self) -> "NodeGroupSpec":
        if self.hosts is not None and "count" not in self.model_fields_set:
            self.count = len(self.hosts)  # a node per named host; a count given is checked instead
        return self


class Configuration(_Model):
    classification: str
    properties: Annotated[dict[str, str], BeforeValidator(_stringify)] = Field(default_factory=dict)


class BootstrapAction(_Model):
    name: DisplayName | None = Field(default=None, max_length=256)
    path: str = Field(description="the script's absolute path on the client")
    # The script's content, uploaded before the create (the CLI does both).
    sha256: Sha256 | None = Field(default=None, description="sha256 of the uploaded script (PUT /api/v1/artifacts/{sha256})")
    args: list[Argument] = Field(default_factory=list)


class ObjectStorageSpec(_Model):
    """An S3-API object store (AWS S3, Alibaba OSS, MinIO, ...) the cluster reads and writes as s3a://."""

    endpoint: str | None = Field(default=None, description="http(s)://host[:port]; absent means AWS S3")
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    access_key: str = Field(min_length=1, max_length=256)
    secret_key: SecretStr = Field(min_length=1, max_length=512)
    path_style_access: bool = True  # what most self-hosted stores need; AWS accepts it too

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlparse(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class MetastoreSpec(_Model):
    """An external Hive metastore database that outlives the cluster (default: Derby on the master)."""

    type: Literal["postgresql", "mysql"]
    jdbc_url: str = Field(min_length=1, max_length=1024, description="jdbc:postgresql://host:port/db or jdbc:mysql://...")
    username: str = Field(min_length=1, max_length=128)
    password: SecretStr = Field(default=SecretStr(""), max_length=512)
    # The tables' data must outlive the cluster too: an s3a:// URI (needs object_storage).
    warehouse_dir: str = Field(min_length=1, max_length=1024, description="s3a://bucket/warehouse")

    @field_validator("warehouse_dir")
    @classmethod
    def _in_object_storage(cls, value: str) -> str:
        url = urlparse(value)
        if url.scheme not in ("s3a", "s3") or not url.netloc:
            raise ValueError("an external metastore outlives the cluster, so must its tables' data: "
                             f"warehouse_dir must be an s3a://bucket/path URI, got {value!r}")
        return "s3a://" + url.netloc + "/" + url.path.strip("/")

    @field_validator("jdbc_url")
    @classmethod
    def _jdbc(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        prefixes = {"postgresql": ("jdbc:postgresql://",), "mysql": ("jdbc:mysql://", "jdbc:mariadb://")}
        if kind in prefixes and not value.startswith(prefixes[kind]):
            raise ValueError(f"a {kind} metastore needs a URL starting with {' or '.join(prefixes[kind])}")
        return value


# A step's longest allowed run time: 7 days, AWS Glue's limit for a job run's timeout
# (Dataproc's job time limits are of the same order).
MAX_STEP_TIMEOUT_SECONDS = 7 * 24 * 3600
StepTimeout = Annotated[int, Field(strict=True, ge=1, le=MAX_STEP_TIMEOUT_SECONDS,
                                   description="seconds the step may run (from its start) before it is "
                                               "cancelled and FAILED with reason TIMEOUT")]


class StepRequest(_Model):
    name: DisplayName | None = Field(default=None, max_length=256)
    type: StepType
    args: list[Argument] = Field(default_factory=list)
    action_on_failure: ActionOnFailure = ActionOnFailure.CONTINUE
    # Each local file the arguments name (its path as the step's parser reads it) -> the
    # sha256 of its content, uploaded before (PUT /api/v1/artifacts/{sha256}).
    files: dict[str, Sha256] = Field(default_factory=dict, max_length=1024)
    timeout: StepTimeout | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


IDLE_TIMEOUT_MIN = 60  # seconds; EMR's bounds: 1 minute ...
IDLE_TIMEOUT_MAX = 7 * 24 * 3600  # ... to 7 days


class AutoTermination(_Model):
    """Terminate the cluster once it has been idle this long (``corral.elastic.idle``)."""

    idle_timeout: int = Field(ge=IDLE_TIMEOUT_MIN, le=IDLE_TIMEOUT_MAX)


class ClusterSpec(_Model):
    name: DisplayName = Field(min_length=1, max_length=128)
    release: str = DEFAULT_RELEASE
    # Where nodes come from: "local" (directory-nodes on this machine) or "ssh" (registered
    # hosts, one node per host, selected per node group: ``corral.hosts.selection``).
    provider: Literal["local", "ssh"] = "local"
    # None (absent) means the release's default services: Hadoop + Spark.
    services: list[str] = Field(default=None, validate_default=True)  # type: ignore[assignment]
    node_groups: list[NodeGroupSpec]
    configurations: list[Configuration] = Field(default_factory=list)
    bootstrap_actions: list[BootstrapAction] = Field(default_factory=list)
    steps: list[StepRequest] = Field(default_factory=list)
    auto_terminate: bool = False
    object_storage: ObjectStorageSpec | None = None
    metastore: MetastoreSpec | None = None
    # Where step and daemon logs are archived (as EMR's LogUri): s3a://bucket/prefix
    log_uri: str | None = Field(default=None, max_length=1024)
    client_token: str | None = Field(default=None, min_length=1, max_length=64)
    # Idle auto-termination (EMR's AutoTerminationPolicy): ``{idle_timeout: seconds}``.
    auto_termination: AutoTermination | None = None
    # Replace a CORE or TASK node that is gone or lost with a new one (EMR's default: on).
    unhealthy_node_replacement: bool = True
    # Metric history, node measurements, the daemons' Prometheus endpoints and alerts (on,
    # as on EMR and Dataproc; off only to save what monitoring costs: corral.reconcile.sampler).
    monitoring: bool = True

    @field_validator("release")
    @classmethod
    def _known_release(cls, value: str) -> str:
        if value not in RELEASES:
            raise ValueError(f"unknown release {value!r} (known: {', '.join(RELEASES)})")
        return value

    @field_validator("services", mode="before")
    @classmethod
    def _lower(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            release = RELEASES.get(info.data.get("release") or DEFAULT_RELEASE, RELEASES[DEFAULT_RELEASE])
            return list(release.default_services)
        return [v.lower() if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @field_validator("log_uri")
    @classmethod
    def _object_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlparse(value)
        if url.scheme not in ("s3a", "s3") or not url.netloc:
            raise ValueError(f"log_uri must be an s3a://bucket/prefix URI, got {value!r}")
        return "s3a://" + url.netloc + "/" + url.path.strip("/")

    @model_validator(mode="after")
    def _local_default_type(self) -> "ClusterSpec":
        # A local node is sized only by its instance type; on ssh None means the host's own size.
        if self.provider == "local":
            for group in self.node_groups:
                if group.instance_type is None:
                    group.instance_type = DEFAULT_INSTANCE_TYPE
        return self

    def services_in_order(self) -> list[str]:
        """The services in the release's dependency order (HDFS before YARN before ...),
        the order daemons start in."""
        order = {name: i for i, name in enumerate(RELEASES[self.release].services)}
        return sorted(self.services, key=lambda name: order.get(name, len(order)))

    def group(self, role: NodeRole) -> NodeGroupSpec | None:
        return next((g for g in self.node_groups if g.role is role), None)

    def count(self, role: NodeRole) -> int:
        return sum(g.count for g in self.node_groups if g.role is role)


def group_name(spec: ClusterSpec, index: int) -> str | None:
    """The name of the spec's ``index``-th group: its own, else its role's when it is the
    first group of that role without a name; None for a further unnamed TASK group."""
    group = spec.node_groups[index]
    if group.name is not None:
        return group.name
    earlier = [g for g in spec.node_groups[:index] if g.role is group.role and g.name is None]
    return None if earlier else group.role.value


def validate_cluster_spec(spec: ClusterSpec) -> None:
    """Whole-spec checks; raises ValidationFailed listing every problem found.

    On ``provider: ssh`` the check that every step type fits the nodes needs the selected
    hosts' sizes: ``corral.control.clusters`` runs it (``registry.validate_fit``) after
    selection; everything else is checked here."""
    from corral.services.registry import validate_services  # services depend on the domain, not back

    errors: list[FieldError] = []
    seen: set[NodeRole] = set()
    names: set[str] = set()
    for i, group in enumerate(spec.node_groups):
        if group.role in seen and group.role is not NodeRole.TASK:
            errors.append(FieldError(("node_groups", i, "role"), f"more than one {group.role.value} group"))
            continue
        name = group_name(spec, i)
        if name is None:
            errors.append(FieldError(("node_groups", i, "name"), "a second TASK group needs a name of its own"))
        elif name in names:
            errors.append(FieldError(("node_groups", i, "name"), f"group name {name!r} is used twice"))
        else:
            names.add(name)
        seen.add(group.role)
    master = spec.group(NodeRole.MASTER)
    if master is None:
        errors.append(FieldError(("node_groups",), "a MASTER group is required"))
    elif master.count != 1:
        idx = spec.node_groups.index(master)
        errors.append(FieldError(("node_groups", idx, "count"), f"MASTER count must be 1, got {master.count}"))
    release = RELEASES[spec.release]
    for i, name in enumerate(spec.services):
        if name not in release.services:
            errors.append(
                FieldError(("services", i), f"unknown service {name!r} for {release.label} (known: {', '.join(release.services)})")
            )
    if len(set(spec.services)) != len(spec.services):
        errors.append(FieldError(("services",), "a service is listed twice"))
    if not spec.services:
        errors.append(FieldError(("services",), "at least one service is required"))
    if spec.log_uri and spec.object_storage is None:
        errors.append(FieldError(("log_uri",), "log_uri needs object_storage (its endpoint and credentials)"))
    elif spec.log_uri and "hdfs" not in spec.services:
        errors.append(FieldError(("log_uri",), "log_uri needs the hdfs service (nodes copy logs with its Hadoop client)"))
    if spec.metastore is not None and "hive" not in spec.services:
        errors.append(FieldError(("metastore",), "an external metastore needs the hive service"))
    if spec.metastore is not None and spec.object_storage is None:
        errors.append(FieldError(("metastore", "warehouse_dir"), "the warehouse is in object storage: set object_storage"))
    errors.extend(_host_selection_errors(spec))
    errors.extend(validate_services(spec, shape_ok=not errors, fit=spec.provider == "local"))
    errors.extend(_rendered_field_errors(spec))
    for i, action in enumerate(spec.bootstrap_actions):
        if not PurePosixPath(action.path).is_absolute():
            errors.append(FieldError(("bootstrap_actions", i, "path"), f"path must be absolute, got {action.path!r}"))
    if errors:
        raise ValidationFailed(errors)


def _host_selection_errors(spec: ClusterSpec) -> list[FieldError]:
    """``host_labels``/``hosts`` only on ssh; a host named once in the spec (a node per
    host); a group naming hosts has as many nodes as it names."""
    errors: list[FieldError] = []
    named_by: dict[str, int] = {}
    for i, group in enumerate(spec.node_groups):
        if spec.provider != "ssh":
            errors += [FieldError(("node_groups", i, name), "only with provider: ssh")
                       for name in ("host_labels", "hosts") if getattr(group, name) is not None]
            continue
        if group.hosts is None:
            continue
        for name in group.hosts:
            if name in named_by:
                where = "named twice in this group" if named_by[name] == i else f"also named by node_groups[{named_by[name]}]"
                errors.append(FieldError(("node_groups", i, "hosts"), f"{name} is {where}"))
            else:
                named_by[name] = i
        if group.count != len(group.hosts):
            errors.append(FieldError(("node_groups", i, "count"),
                                     f"count is {group.count} but hosts names {len(group.hosts)} "
                                     f"host{'s' if len(group.hosts) != 1 else ''} (one node per host)"))
    return errors


def _rendered_field_errors(spec: ClusterSpec) -> list[FieldError]:
    """Fields Corral writes into Hadoop XML (core-site, hive-site) or spark-defaults.conf:
    refused when those files cannot carry them (``corral.formats``). Messages never quote
    a value."""
    fields: list[tuple[tuple[str | int, ...], str, bool]] = []
    if spec.object_storage is not None:
        storage = spec.object_storage
        fields += [(("object_storage", "endpoint"), storage.endpoint or "", False),
                   (("object_storage", "region"), storage.region, False),
                   (("object_storage", "access_key"), storage.access_key, False),
                   (("object_storage", "secret_key"), storage.secret_key.get_secret_value(), True)]
    if spec.metastore is not None:
        store = spec.metastore
        fields += [(("metastore", "jdbc_url"), store.jdbc_url, False), (("metastore", "username"), store.username, False),
                   (("metastore", "password"), store.password.get_secret_value(), True),
                   (("metastore", "warehouse_dir"), store.warehouse_dir, False)]
    errors = []
    for loc, value, secret in fields:
        # A secret is filled in as a value, never read as a placeholder: it may hold "{{secret:".
        problem = (formats.text_problem(value) if secret else formats.user_text_problem(value)) or formats.xml_problem(value)
        if problem:
            errors.append(FieldError(loc, problem))
    return errors
