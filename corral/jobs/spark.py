"""SPARK steps: ``spark-submit`` on the master against the cluster, in client mode.

Arguments are spark-submit's own (options, then the application .py/.jar, then its
arguments), read as Spark 4.3's SparkSubmitOptionParser reads them. The master URL and
defaults come from the cluster's spark-defaults.conf.

Local files are shipped with the step wherever spark-submit reads one from the client's
disk: the application; ``--py-files``, ``--files``, ``--jars`` and ``--archives`` lists
(with ``#alias``es); ``--properties-file``, ``--extra-properties-file`` and
``--keytab``; and the same lists and files given as ``--conf`` properties. Options naming
the node's own paths (``--driver-class-path``, ``--driver-library-path``) and remote
URIs (``hdfs:``, ``s3a:``, ``local:``, ``http(s):``) are left alone. Files named inside a
properties file are not read (name them as options).
"""

from __future__ import annotations

import re

from corral.errors import FieldError
from corral.jobs.files import Dialect, LocalFile, listed_files, named_file, reference
from corral.jobs.base import Command, StepKindBase
from corral.jobs.spark_conf import cluster_driver_options, fit_errors
from corral.services.base import ClusterView

# SparkSubmitOptionParser.opts and .switches (spark-launcher 4.3.0), aliases included.
VALUE_OPTIONS = {
    "--archives", "--class", "--conf", "-c", "--deploy-mode", "--driver-class-path", "--driver-cores",
    "--driver-default-class-path", "--driver-java-options", "--driver-library-path", "--driver-memory",
    "--executor-cores", "--executor-memory", "--files", "--jars", "--keytab", "--kill", "--master", "--remote",
    "--name", "--num-executors", "--packages", "--exclude-packages", "--principal", "--properties-file",
    "--extra-properties-file", "--proxy-user", "--py-files", "--queue", "--repositories", "--status",
    "--total-executor-cores",
}
SWITCHES = {"--help", "-h", "--supervise", "--usage-error", "--verbose", "-v", "--version", "--load-spark-defaults"}
FILE_LIST_OPTIONS = {"--py-files", "--files", "--jars", "--archives"}
FILE_OPTIONS = {"--properties-file", "--extra-properties-file", "--keytab"}  # read with java.io.File
# Properties spark-submit and Spark's YARN client read local files from (SparkSubmitArguments
# .loadEnvironmentArguments, SparkSubmit.prepareSubmitEnvironment, yarn.Client.prepareLocalResources).
CONF_FILE_LISTS = {
    "spark.jars", "spark.files", "spark.archives", "spark.submit.pyFiles",
    "spark.yarn.dist.jars", "spark.yarn.dist.files", "spark.yarn.dist.archives", "spark.yarn.dist.pyFiles",
}
CONF_FILES = {"spark.kerberos.keytab", "spark.yarn.keytab", "spark.jars.ivySettings"}
# Primary resources that are not files (SparkSubmit.isShell / isInternal).
_SPECIAL_RESOURCES = {"spark-shell", "pyspark-shell", "sparkr-shell", "spark-internal"}
# SparkSubmitOptionParser.eqSeparatedOpt: "--name=value" with a non-empty value.
_EQUALS_FORM = re.compile(r"(--[^=]+)=(.+)")
_REFUSED = {"--master": "the cluster's master is set by Corral", "--remote": "Spark Connect is not a spark-submit job",
            "--kill": "cancel the step instead", "--status": "see the step's state instead"}


def _value_files(name: str, index: int, value: str, offset: int) -> tuple[list[LocalFile], list[FieldError]]:
    """The local files an option's value names."""
    if name in FILE_LIST_OPTIONS:
        return listed_files(index, value, offset, name, Dialect.SPARK_URI)
    if name in FILE_OPTIONS:
        return named_file(index, value, offset, name, Dialect.PATH)
    if name in ("--conf", "-c") and "=" in value:
        key, _, prop = value.partition("=")
        prop_offset = offset + len(key) + 1
        if key in CONF_FILE_LISTS:
            return listed_files(index, prop, prop_offset, f"--conf {key}", Dialect.SPARK_URI)
        if key in CONF_FILES:
            return named_file(index, prop, prop_offset, f"--conf {key}", Dialect.PATH)
    return [], []


class SparkStep(StepKindBase):
    requires_services = ("spark",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        files: list[LocalFile] = []
        errors: list[FieldError] = []
        i, app = 0, None
        while i < len(args):
            arg = args[i]
            inline = _EQUALS_FORM.fullmatch(arg)
            name = inline.group(1) if inline else arg
            if name in _REFUSED:
                errors.append(FieldError(("args", i), f"{name} is not allowed: {_REFUSED[name]}"))
            if name in VALUE_OPTIONS:
                if not inline and i + 1 >= len(args):
                    errors.append(FieldError(("args", i), f"{arg} needs a value"))
                    break
                value_index, value = (i, inline.group(2)) if inline else (i + 1, args[i + 1])
                offset = len(name) + 1 if inline else 0
                found, problems = _value_files(name, value_index, value, offset)
                files, errors = files + found, errors + problems
                i = value_index + 1
                continue
            if name in SWITCHES:
                i += 1
                continue
            if arg.startswith("-"):
                errors.append(FieldError(("args", i), f"unknown spark-submit option {arg!r}"))
                i += 1
                continue
            app = i
            break
        if app is None:
            errors.append(FieldError(("args",), "no application given (a .py file or a .jar after the options)"))
        elif args[app] not in _SPECIAL_RESOURCES:
            ref = reference(app, args[app], 0, "application", Dialect.SPARK_URI)
            files += [ref] if ref else []
        return files, errors

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        # A cluster-mode driver runs in a YARN container: sized for one, not for the master.
        sizing = cluster_driver_options(args, cluster)
        return Command(argv=["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", *sizing, *args], env={})

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        return fit_errors(args, cluster, props)
