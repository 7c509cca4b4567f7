"""The step-type contract: check a step's arguments when it is added (naming the argument
at fault), say which arguments are local files to ship to the master, and build the
command the master's agent runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from corral.errors import FieldError
from corral.services.base import ClusterView


@dataclass(frozen=True)
class LocalFile:
    index: int  # which argument
    path: str  # the local path inside that argument (an argument may be a comma list)


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


class StepKind(Protocol):
    def requirements(self, args: list[str]) -> tuple[str, ...]:
        """What the cluster must have for the step to be accepted: services by name, or
        ``object_storage`` (the spec's object store)."""

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        """Local files the step needs, and what is wrong with ``args``."""

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        """The command for the master's agent; ``args`` already point at shipped files.
        It ends with the step's arguments, position for position (an argument may be
        rewritten in place, e.g. a release jar's name to its path on the node)."""

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        """Why the cluster could never schedule what ``args`` ask for (e.g. an executor larger
        than every NodeManager), from its effective configuration ``props``; [] when it can."""


class StepKindBase:
    """Most step kinds need the same services whatever their arguments."""

    requires_services: tuple[str, ...] = ()

    def requirements(self, args: list[str]) -> tuple[str, ...]:
        return self.requires_services

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        return []


def require_file(index: int, path: str, what: str) -> tuple[list[LocalFile], list[FieldError]]:
    loc = ("args", index)
    if not Path(path).is_absolute():
        return [], [FieldError(loc, f"{what} must be an absolute path, got {path!r}")]
    if not Path(path).is_file():
        return [], [FieldError(loc, f"{what} not found: {path}")]
    return [LocalFile(index, path)], []
