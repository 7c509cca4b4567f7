"""SHELL steps: a command on the master with the cluster's environment (SPARK_HOME,
SPARK_CONF_DIR, spark-submit on PATH, ...).

One argument is a shell command line (``bash -c``); several are an argv executed as is.
A first argument ending in ``.sh`` or ``.py`` is a local script: it must exist, it is
shipped with the step and run with bash or the runtime's Python.
"""

from __future__ import annotations

from corral.errors import FieldError
from corral.jobs.base import Command, LocalFile, StepKindBase
from corral.services.base import ClusterView

_INTERPRETERS = {".sh": "/bin/bash", ".py": "${PYTHON}"}


def _script(args: list[str]) -> str | None:
    if args and " " not in args[0] and args[0].endswith(tuple(_INTERPRETERS)):
        return args[0]
    return None


class ShellStep(StepKindBase):
    requires_services: tuple[str, ...] = ()

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        if not args or not args[0].strip():
            return [], [FieldError(("args",), "a SHELL step needs a command")]
        script = _script(args)
        return ([LocalFile(0, script, "script", 0, len(script))] if script else []), []

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        script = _script(args)
        if script:
            interpreter = next(i for ext, i in _INTERPRETERS.items() if script.endswith(ext))
            return Command(argv=[interpreter, *args], env={})
        if len(args) == 1:
            return Command(argv=["/bin/bash", "-c", args[0]], env={})
        return Command(argv=list(args), env={})
