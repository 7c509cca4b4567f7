"""Step types by name."""

from __future__ import annotations

from corral.domain.states import StepType
from corral.jobs.base import StepKind
from corral.jobs.shell import ShellStep
from corral.jobs.spark import SparkStep

STEP_KINDS: dict[StepType, StepKind] = {StepType.SPARK: SparkStep(), StepType.SHELL: ShellStep()}
