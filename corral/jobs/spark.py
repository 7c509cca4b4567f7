"""SPARK steps: ``spark-submit`` on the master against the cluster, in client mode.

Arguments are spark-submit's own (options, then the application .py/.jar, then its
arguments). The master URL and defaults come from the cluster's spark-defaults.conf.
Local files (the application, --py-files, --files, --jars) are shipped with the step.
"""

from __future__ import annotations

from urllib.parse import urlparse

from corral.errors import FieldError
from corral.jobs.base import Command, LocalFile, StepKindBase, require_file
from corral.jobs.spark_conf import cluster_driver_options, fit_errors
from corral.services.base import ClusterView

# spark-submit options that take a value; the first argument that is neither an option
# nor an option's value is the application.
_VALUE_OPTIONS = {
    "--class", "--conf", "-c", "--name", "--jars", "--py-files", "--files", "--archives",
    "--driver-memory", "--driver-cores", "--driver-java-options", "--driver-library-path",
    "--driver-class-path", "--executor-memory", "--executor-cores", "--num-executors",
    "--total-executor-cores", "--properties-file", "--packages", "--exclude-packages",
    "--repositories", "--queue", "--principal", "--keytab", "--proxy-user", "--deploy-mode",
}
_FILE_LIST_OPTIONS = {"--py-files", "--files", "--jars"}
_REFUSED = {"--master": "the cluster's master is set by Corral"}


def _is_local(path: str) -> bool:
    scheme = urlparse(path).scheme
    return scheme in ("", "file") and not path.startswith("local:")


class SparkStep(StepKindBase):
    requires_services = ("spark",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        files: list[LocalFile] = []
        errors: list[FieldError] = []
        i, app = 0, None
        while i < len(args):
            arg = args[i]
            name = arg.split("=", 1)[0]
            if name in _REFUSED:
                errors.append(FieldError(("args", i), f"{name} is not allowed: {_REFUSED[name]}"))
            if not arg.startswith("-"):
                app = i
                break
            if name in _VALUE_OPTIONS:
                inline = "=" in arg  # --py-files=a.py,b.py
                if not inline and i + 1 >= len(args):
                    errors.append(FieldError(("args", i), f"{arg} needs a value"))
                    break
                value_index = i if inline else i + 1
                if name in _FILE_LIST_OPTIONS:
                    value = arg.split("=", 1)[1] if inline else args[i + 1]
                    for item in value.split(","):
                        if item and _is_local(item):
                            found, errs = require_file(value_index, urlparse(item).path, f"{name} file")
                            files += found
                            errors += errs
                i = value_index + 1
                continue
            i += 1
        if app is None:
            errors.append(FieldError(("args",), "no application given (a .py file or a .jar after the options)"))
        elif _is_local(args[app]):
            found, errs = require_file(app, urlparse(args[app]).path, "application")
            files += found
            errors += errs
        return files, errors

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        # A cluster-mode driver runs in a YARN container: sized for one, not for the master.
        sizing = cluster_driver_options(args, cluster)
        return Command(argv=["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", *sizing, *args], env={})

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        return fit_errors(args, cluster, props)
