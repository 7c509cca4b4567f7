"""The step-type contract: check a step's arguments when it is added (naming the argument
at fault), say where they name local files to ship to the master (``corral.jobs.files``),
and build the command the master's agent runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.errors import FieldError
from corral.jobs.files import LocalFile
from corral.services.base import ClusterView

__all__ = ["Command", "LocalFile", "StepKind", "StepKindBase"]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


class StepKind(Protocol):
    def requirements(self, args: list[str]) -> tuple[str, ...]:
        """What the cluster must have for the step to be accepted: services by name, or
        ``object_storage`` (the spec's object store)."""

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        """Every reference to a local file in ``args`` (the CLI uploads them, the control
        plane checks they were), and what is wrong with ``args``. Reads no disk: the
        files are on the client's machine, not here."""

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        """The command for the master's agent; ``args`` already point at the shipped copies
        of local files (``{artifact:<sha256>}/<name>``, filled in by the agent)."""

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

