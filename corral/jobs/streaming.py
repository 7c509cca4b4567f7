"""STREAMING steps: Hadoop Streaming (``mapred streaming``) with its own options,
e.g. ``-mapper mapper.py -reducer reducer.py -input /in -output /out``.

Local files are shipped with the step: a ``-mapper``/``-reducer``/``-combiner``/
``-mapdebug``/``-reducedebug`` that is an absolute path to a script, each ``-file``, and
the local entries of the generic options ``-files``, ``-archives``, ``-libjars`` (with
their ``#alias``es), ``-conf`` and ``-tokenCacheFile``. On the master
(``corral.jobs.streaming_run``, where the shipped paths are known) the scripts are added to
``-files`` so YARN gives every task a copy, and the generic options, which Hadoop reads
only before the streaming ones and only once each, are merged and moved to the front.
"""

from __future__ import annotations

from pathlib import Path

from corral.errors import FieldError
from corral.jobs.base import Command, StepKindBase
from corral.jobs.files import (Dialect, GenericOption, GENERIC_FILE_LISTS, LocalFile, encode, generic_option,
                               generic_option_files, reference)
from corral.jobs.mapreduce_conf import d_option, job_fit_errors
from corral.services.base import ClusterView

PROGRAM_OPTIONS = ("mapper", "reducer", "combiner", "mapdebug", "reducedebug")
# StreamJob's options that take a value (hadoop-streaming 3.4.2, read with commons-cli's
# BasicParser: "-name value" or "--name value").
VALUE_OPTIONS = {*PROGRAM_OPTIONS, "input", "output", "file", "dfs", "additionalconfspec", "inputformat",
                 "outputformat", "partitioner", "numReduceTasks", "inputreader", "jobconf", "cmdenv", "cacheFile",
                 "cacheArchive", "io"}


def is_local_program(value: str) -> bool:
    """A mapper given as a path to an existing script (not a command line or a class)."""
    return value.startswith("/") and " " not in value


def _streaming_option(arg: str) -> str | None:
    name = arg[2:] if arg.startswith("--") else arg[1:] if arg.startswith("-") else ""
    return name if name in VALUE_OPTIONS else None


class StreamingStep(StepKindBase):
    requires_services = ("mapreduce",)

    def check(self, args: list[str]) -> tuple[list[LocalFile], list[FieldError]]:
        files: list[LocalFile] = []
        errors: list[FieldError] = []
        seen: set[str] = set()
        i = 0
        while i < len(args):
            generic = generic_option(args, i)
            if isinstance(generic, FieldError):
                errors.append(generic)
                break
            if generic is not None:
                found, problems = generic_option_files(generic)
                files, errors = files + found, errors + problems
                i = generic.next_index
                continue
            name = _streaming_option(args[i])
            if name is None:
                i += 1
                continue
            if i + 1 >= len(args):
                errors.append(FieldError(("args", i), f"{args[i]} needs a value"))
                break
            value = args[i + 1]
            seen.add(name)
            if name in PROGRAM_OPTIONS and is_local_program(value):
                files.append(LocalFile(i + 1, value, f"-{name} script", 0, len(value)))
            elif name == "file":  # StreamJob: new Path(value), one file per -file
                ref = reference(i + 1, value, 0, "-file entry", Dialect.HADOOP_PATH)
                files += [ref] if ref else []
            i += 2
        for needed in ("input", "output", "mapper"):
            if needed not in seen:
                errors.append(FieldError(("args",), f"a STREAMING step needs -{needed}"))
        return files, errors

    def command(self, args: list[str], cluster: ClusterView) -> Command:
        return Command(argv=["${PYTHON}", "-m", "corral.jobs.streaming_run", *args], env={})

    def fit_errors(self, args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
        """A job whose own -D (or -jobconf) sizes no NodeManager could place."""
        own: dict[str, tuple[str, int]] = {}
        i = 0
        while i < len(args):
            generic = generic_option(args, i)
            if isinstance(generic, GenericOption):
                setting = d_option(generic)
                if setting:
                    own[setting[0]] = (setting[1], generic.value_index)
                i = generic.next_index
                continue
            name = _streaming_option(args[i])
            if name == "jobconf" and i + 1 < len(args) and "=" in args[i + 1]:
                key, _, value = args[i + 1].partition("=")
                own[key.strip()] = (value, i + 1)
            i += 2 if name is not None else 1
        return job_fit_errors(own, cluster, props, "STREAMING")


def rewrite(args: list[str], python: str) -> list[str]:
    """``mapred streaming`` arguments with local scripts moved into -files (run on the
    master once the shipped paths are known). A .py script runs with the cluster's Python,
    a .sh one with bash, anything else as an executable. Generic options come first, as
    GenericOptionsParser reads them only there; several -files (-archives, -libjars) are
    merged into one, since it reads only the first."""
    lists: dict[str, list[str]] = {name: [] for name in GENERIC_FILE_LISTS}
    singles: list[str] = []  # -D, -conf, -fs, -jt, -tokenCacheFile, in the given order
    rest: list[str] = []
    i = 0
    while i < len(args):
        generic = generic_option(args, i)
        if isinstance(generic, GenericOption):
            if generic.name in lists:
                lists[generic.name] += [item for item in generic.value.split(",") if item.strip()]
            else:
                singles += [f"-{generic.name}", generic.value]
            i = generic.next_index
            continue
        name = _streaming_option(args[i])
        if name in PROGRAM_OPTIONS and i + 1 < len(args) and is_local_program(args[i + 1]):
            path = args[i + 1]
            lists["files"].append(encode(path))
            script = Path(path).name
            runner = {".py": f"{python} ", ".sh": "bash "}.get(Path(script).suffix, "./")
            rest += [args[i], f"{runner}{script}"]
            i += 2
            continue
        if name is not None and i + 1 < len(args):
            rest += args[i:i + 2]
            i += 2
            continue
        rest.append(args[i])
        i += 1
    merged = [part for name, items in lists.items() if items for part in (f"-{name}", ",".join(dict.fromkeys(items)))]
    return [*singles, *merged, *rest]
