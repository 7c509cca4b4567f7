"""Step types by name."""

from __future__ import annotations

from corral.domain.states import StepType
from corral.jobs.base import StepKind
from corral.jobs.hadoop_jar import HadoopJarStep
from corral.jobs.shell import ShellStep
from corral.jobs.spark import SparkStep
from corral.jobs.sql import HiveStep, SparkSqlStep
from corral.jobs.streaming import StreamingStep
from corral.jobs.transfer import TransferStep

STEP_KINDS: dict[StepType, StepKind] = {
    StepType.SPARK: SparkStep(),
    StepType.HADOOP_JAR: HadoopJarStep(),
    StepType.STREAMING: StreamingStep(),
    StepType.SPARK_SQL: SparkSqlStep(),
    StepType.HIVE: HiveStep(),
    StepType.SHELL: ShellStep(),
    StepType.DATA_IMPORT: TransferStep("import"),
    StepType.DATA_EXPORT: TransferStep("export"),
}
