"""SQL steps, as EMR's Hive and Spark SQL steps: one argument, either an inline query or a
local ``.sql`` file (shipped with the step). Results go to the step's stdout, kept with its
logs.

- SPARK_SQL runs ``spark-sql`` on the master (the cluster's metastore when it has HIVE).
  Its ``-f`` reads a Hadoop path (Hive's CliDriver.processFile), so an ``hdfs:``/``s3a:``
  script is read where it is and only a local one (or ``file:``) is shipped.
- HIVE runs the statements through the cluster's SQL endpoint with ``beeline``, as a Hive
  client would; beeline reads a local file.
"""

from __future__ import annotations

from corral.errors import FieldError
from corral.jobs.base import Command, StepKindBase
from corral.jobs.files import Dialect, LocalFile, named_file
from corral.services.base import ClusterView


def _is_file(arg: str) -> bool:
    return arg.endswith(".sql") and "\n" not in arg and " " not in arg.strip()


def _check(args: list[str], kind: str, dialect: Dialect) -> tuple[list[LocalFile], list[FieldError]]:
    if len(args) != 1 or not args[0].strip():
        return [], [FieldError(("args",), f"a {kind} step takes one argument: a query or a .sql file")]
    return named_file(0, args[0], 0, "SQL", dialect) if _is_file(args[0]) else ([], [])


class SparkSqlStep(StepKindBase):
    requires_services = ("spark",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        return _check(args, "SPARK_SQL", Dialect.HADOOP_PATH)

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        flag = "-f" if _is_file(args[0]) else "-e"
        return Command(argv=["${SPARK_HOME}/bin/spark-sql", "--conf", "spark.ui.showConsoleProgress=false", flag, *args],
                       env={})


class HiveStep(StepKindBase):
    requires_services = ("hive",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        return _check(args, "HIVE", Dialect.PATH)

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        from corral.services.hive import jdbc_url  # noqa: PLC0415 - jobs depend on services lazily

        flag = "-f" if _is_file(args[0]) else "-e"
        return Command(argv=["${SPARK_HOME}/bin/beeline", "-u", jdbc_url(cluster), "-n", "hadoop", "--silent=true",
                             "--showHeader=true", "--outputformat=tsv2", flag, *args], env={})
