"""STREAMING steps: Hadoop Streaming (``mapred streaming``) with its own options,
e.g. ``-mapper mapper.py -reducer reducer.py -input /in -output /out``.

A ``-mapper``/``-reducer``/``-combiner`` that names a local file is shipped with the step
and, on the master, added to ``-files`` so YARN gives every task a copy
(``corral.jobs.streaming_run`` does that rewrite where the shipped paths are known).
Files in ``-files`` are shipped the same way.
"""

from __future__ import annotations

from pathlib import Path

from corral.errors import FieldError
from corral.jobs.base import Command, LocalFile, StepKindBase, require_file
from corral.services.base import ClusterView

PROGRAM_OPTIONS = ("-mapper", "-reducer", "-combiner")
_VALUE_OPTIONS = (*PROGRAM_OPTIONS, "-input", "-output", "-files", "-archives", "-libjars", "-D", "-file",
                  "-inputformat", "-outputformat", "-partitioner", "-numReduceTasks", "-cmdenv", "-inputreader")


def is_local_program(value: str) -> bool:
    """A mapper given as a path to an existing script (not a command line or a class)."""
    return value.startswith("/") and " " not in value


class StreamingStep(StepKindBase):
    requires_services = ("mapreduce",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        files: list[LocalFile] = []
        errors: list[FieldError] = []
        seen: set[str] = set()
        i = 0
        while i < len(args):
            option = args[i]
            if option in _VALUE_OPTIONS:
                if i + 1 >= len(args):
                    errors.append(FieldError(("args", i), f"{option} needs a value"))
                    break
                value = args[i + 1]
                seen.add(option)
                if option in PROGRAM_OPTIONS and is_local_program(value):
                    found, errs = require_file(i + 1, value, f"{option[1:]} script")
                    files, errors = files + found, errors + errs
                elif option == "-files":
                    for item in value.split(","):
                        if item.startswith("/"):
                            found, errs = require_file(i + 1, item, "-files entry")
                            files, errors = files + found, errors + errs
                i += 2
                continue
            i += 1
        for needed in ("-input", "-output", "-mapper"):
            if needed not in seen:
                errors.append(FieldError(("args",), f"a STREAMING step needs {needed}"))
        return files, errors

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        return Command(argv=["${PYTHON}", "-m", "corral.jobs.streaming_run", *args], env={})


def rewrite(args: list[str], python: str) -> list[str]:
    """``mapred streaming`` arguments with local scripts moved into -files (run on the
    master once the shipped paths are known). A .py script runs with the cluster's Python,
    a .sh one with bash, anything else as an executable."""
    shipped: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(args):
        option = args[i]
        if option in PROGRAM_OPTIONS and i + 1 < len(args) and is_local_program(args[i + 1]):
            path = args[i + 1]
            shipped.append(path)
            name = Path(path).name
            runner = {".py": f"{python} ", ".sh": "bash "}.get(Path(name).suffix, "./")
            out += [option, f"{runner}{name}"]
            i += 2
            continue
        if option == "-files" and i + 1 < len(args):
            shipped += args[i + 1].split(",")
            i += 2
            continue
        out.append(option)
        i += 1
    # Generic options (-files, -D) must come before the streaming ones.
    generic = ["-files", ",".join(dict.fromkeys(shipped))] if shipped else []
    d_options: list[str] = []
    rest: list[str] = []
    j = 0
    while j < len(out):
        if out[j] == "-D" and j + 1 < len(out):
            d_options += out[j:j + 2]
            j += 2
        else:
            rest.append(out[j])
            j += 1
    return [*d_options, *generic, *rest]
