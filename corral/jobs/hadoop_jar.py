"""HADOOP_JAR steps: ``hadoop jar JAR [MAIN_CLASS] ARGS...`` on the master, as EMR's
HadoopJarStep (the main class may be omitted when the jar's manifest names one).

The jar is a local file (shipped with the step) or one of the release's own tool jars by
name, e.g. ``hadoop-mapreduce-examples.jar``, like EMR's
/usr/lib/hadoop-mapreduce/hadoop-mapreduce-examples.jar. Programs run through ToolRunner
read Hadoop's generic options at the start of their arguments (after the main class, or
after the program name of a driver such as the examples jar's ``wordcount``): local files
of ``-files``, ``-archives``, ``-libjars``, ``-conf`` and ``-tokenCacheFile`` are shipped
too, ``#alias``es kept.
"""

from __future__ import annotations

from corral.errors import FieldError
from corral.jobs.base import Command, StepKindBase
from corral.jobs.files import LocalFile, leading_generic_options, scheme_of
from corral.jobs.mapreduce_conf import job_fit_errors, leading_d_options
from corral.runtime.hadoop import TOOL_JARS
from corral.services.base import ClusterView


def release_jar(arg: str) -> str | None:
    """The on-node path of a release tool jar named ``arg``, if it names one."""
    return "${HADOOP_HOME}/" + arg if arg in TOOL_JARS else None


def _known() -> str:
    return ", ".join(sorted(TOOL_JARS))


def _generic_start(args: list[str]) -> int:
    """Generic options start right after the jar (a manifest main class) or after the
    first argument (the main class, or a driver's program name)."""
    return 1 if len(args) > 1 and args[1].startswith("-") else 2


class HadoopJarStep(StepKindBase):
    requires_services = ("mapreduce",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        if not args or not args[0]:
            return [], [FieldError(("args",), "a HADOOP_JAR step needs a jar (then an optional main class and its arguments)")]
        jar = args[0]
        files: list[LocalFile] = []
        if release_jar(jar):
            pass
        elif not jar.endswith(".jar"):
            return [], [FieldError(("args", 0), f"the first argument must be a .jar, got {jar!r}")]
        elif scheme_of(jar) is not None and "/" in jar:
            return [], [FieldError(("args", 0), f"hadoop jar runs a local jar: give a local path or one of the "
                                                f"release's jars ({_known()}), got {jar!r}")]
        else:  # RunJar opens it with java.io.File
            hint = f" (it is not one of the release's jars either: {_known()})" if "/" not in jar else ""
            files.append(LocalFile(0, jar, "jar", 0, len(jar), hint=hint))
        found, errors = leading_generic_options(args, _generic_start(args))
        return files + found, errors

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        """A job whose own -D sizes (mapreduce.map.memory.mb, ...) no NodeManager could place."""
        return job_fit_errors(leading_d_options(args, _generic_start(args)), cluster, props, "HADOOP_JAR")

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        jar = release_jar(args[0]) or args[0]
        return Command(argv=["hadoop", "jar", jar, *args[1:]], env={})
