"""HADOOP_JAR steps: ``hadoop jar JAR [MAIN_CLASS] ARGS...`` on the master, as EMR's
HadoopJarStep (the main class may be omitted when the jar's manifest names one).

The jar is a local file (shipped with the step) or one of the release's own tool jars by
name, e.g. ``hadoop-mapreduce-examples.jar``, like EMR's
/usr/lib/hadoop-mapreduce/hadoop-mapreduce-examples.jar.
"""

from __future__ import annotations

from corral.errors import FieldError
from corral.jobs.base import Command, LocalFile, StepKindBase, require_file
from corral.runtime.hadoop import TOOL_JARS
from corral.services.base import ClusterView


def release_jar(arg: str) -> str | None:
    """The on-node path of a release tool jar named ``arg``, if it names one."""
    return "${HADOOP_HOME}/" + arg if arg in TOOL_JARS else None


class HadoopJarStep(StepKindBase):
    requires_services = ("mapreduce",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        if not args or not args[0]:
            return [], [FieldError(("args",), "a HADOOP_JAR step needs a jar (then an optional main class and its arguments)")]
        jar = args[0]
        if release_jar(jar):
            return [], []
        if not jar.endswith(".jar"):
            return [], [FieldError(("args", 0), f"the first argument must be a .jar, got {jar!r}")]
        if "/" not in jar:
            known = ", ".join(sorted(TOOL_JARS))
            return [], [FieldError(("args", 0), f"unknown jar {jar!r}: give an absolute path or one of the release's jars ({known})")]
        return require_file(0, jar, "jar")

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        jar = release_jar(args[0]) or args[0]
        return Command(argv=["hadoop", "jar", jar, *args[1:]], env={})
