"""Runs on the master for a DATA_IMPORT / DATA_EXPORT step (see ``corral.jobs.transfer``).

Object storage <-> HDFS copies run DistCp into a staging directory beside the target and
are committed by a rename at the end; everything else is ``transfer_spark`` submitted to
the cluster. Either way a failure leaves the target as it was.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
import tempfile
from pathlib import Path

from corral.domain.locations import STAGING_PREFIX, FileLocation
from corral.jobs.transfer import REPORT_ENV, FileCommit, Transfer, parse
from corral.services.hadoop_common import DAEMON_JAVA_OPTS

# DistCp's own sizing: a map per 256 MiB (distcp.bytes.per.map), at most 20 maps.
BYTES_PER_MAP = 256 * 1024 * 1024
MAX_MAPS = 20
# A copy this small runs as one map inside the job's ApplicationMaster (an "uber" job):
# no task containers to start, which is most of the time a small copy takes.
UBER_MAX_BYTES = 128 * 1024 * 1024
UBER_OPTION = "-Dmapreduce.job.ubertask.enable=true"
# The ``hadoop fs`` calls are metadata operations in a JVM that lives a second or two:
# C1 and the serial collector, as the daemons use, start it in about half the CPU time.
FS_CLIENT_ENV = {**os.environ, "HADOOP_CLIENT_OPTS": os.environ.get("HADOOP_CLIENT_OPTS") or DAEMON_JAVA_OPTS}


def say(message: str) -> None:
    print(f"corral: {message}", file=sys.stderr, flush=True)


def hadoop_fs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["hadoop", "fs", *args], capture_output=True, text=True, env=FS_CLIENT_ENV)
    if check and result.returncode != 0:
        raise RuntimeError(f"hadoop fs {' '.join(args)} failed: {last_error(result.stderr)}")
    return result


def last_error(stderr: str) -> str:
    """The line of a Hadoop tool's stderr that says what went wrong (not its log noise)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("\tat ")]
    for line in reversed(lines):
        if any(word in line for word in ("Exception", "Error", "No such", "denied", "exist", "refused")):
            return line[:500]
    return lines[-1][:500] if lines else "no output"


def remove(uri: str, check: bool = True) -> None:
    """Delete ``uri`` and everything under it, at once (no trash); nothing there is no error."""
    hadoop_fs("-rm", "-r", "-f", "-skipTrash", uri, check=check)


def exists(path: str) -> bool:
    return hadoop_fs("-test", "-e", path, check=False).returncode == 0


def holds_data(target: FileLocation) -> bool:
    """Whether a target is there: a directory or file, or for a root (always there),
    anything in it but transfers' staging directories."""
    if not target.is_root:
        return exists(target.uri)
    names = [posixpath.basename(p) for p in hadoop_fs("-ls", "-C", target.uri).stdout.split()]
    return any(not n.startswith(STAGING_PREFIX) for n in names)


def commit_files(staging: FileLocation, target: FileLocation, mode: str) -> None:
    """Put the staged files in place (see ``FileCommit``)."""
    commit = FileCommit.of(holds_data(target), mode, target.is_root)
    if commit is FileCommit.RENAME:
        if target.parent is not None and not target.parent.is_root:
            hadoop_fs("-mkdir", "-p", target.parent.uri)
    elif commit is FileCommit.REPLACE:
        remove(target.uri)
    else:
        listing = hadoop_fs("-ls", "-C", staging.uri).stdout.split()
        if listing:
            hadoop_fs("-mv", *listing, target.uri)
        remove(staging.uri)
        return
    hadoop_fs("-mv", staging.uri, target.uri)


def source_size(source: str) -> tuple[int, int]:
    """(files, bytes) under ``source``; fails with the reason when it cannot be read."""
    fields = hadoop_fs("-count", source).stdout.split()  # DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME
    return int(fields[1]), int(fields[2])


def distcp_options(files: int, size: int) -> list[str]:
    """Maps sized to the copy, so a small one does not start twenty containers."""
    maps = max(1, min(MAX_MAPS, files, -(-size // BYTES_PER_MAP)))
    options = ["-m", str(maps)]
    if maps == 1 and size <= UBER_MAX_BYTES:
        options.insert(0, UBER_OPTION)
    return options


def run_distcp(t: Transfer, step_id: str) -> int:
    target = t.target_files
    if t.mode == "error" and holds_data(target):
        say(f"{t.target} already exists (use --mode overwrite or append)")
        return 1
    files, size = source_size(t.source_files.uri)
    staging = target.staging(step_id)
    remove(staging.uri, check=False)  # a retried step's leftovers
    options = distcp_options(files, size)
    argv = ["hadoop", "distcp", f"-Dmapreduce.job.name=corral {t.direction} {step_id}",
            *options, t.source_files.uri, staging.uri]
    say(f"{files} files, {size} bytes; running " + " ".join(argv))
    committed = False
    try:
        code = subprocess.run(argv).returncode
        if code != 0 and UBER_OPTION in options:
            # An uber job's map has one attempt (JobImpl.makeUberDecision sets
            # mapreduce.map.maxattempts to 1), so one transient error would fail the copy:
            # once more as an ordinary job, whose map has its own container and retries.
            say(f"DistCp as an uber job failed (exit code {code}); once more with the map in a container of its own")
            remove(staging.uri, check=False)
            argv.remove(UBER_OPTION)
            code = subprocess.run(argv).returncode
        if code != 0:
            say(f"DistCp failed (exit code {code}); {t.target} is unchanged")
            return code
        commit_files(staging, target, t.mode)
        committed = True  # the staging directory is gone (renamed, or emptied and removed)
    finally:
        if not committed:
            remove(staging.uri, check=False)
    say(f"copied {t.source} to {t.target}")
    return 0


def run_spark(t: Transfer, step_id: str, args: list[str]) -> int:
    """The Spark job; its reason for failing is printed last, where the step's failure
    message is taken from (Spark's own shutdown logging comes before it)."""
    script = Path(__file__).with_name("transfer_spark.py")
    argv = [f"{os.environ['SPARK_HOME']}/bin/spark-submit", "--name", f"corral data {t.direction} {step_id}",
            "--conf", "spark.ui.showConsoleProgress=false",
            # No web UI: nobody watches a transfer's (the History Server has its event log,
            # and is its tracking URL on YARN), and a UI is a Jetty server more to start.
            "--conf", "spark.ui.enabled=false", "--conf", "spark.yarn.historyServer.allowTracking=true",
            # start with the executors that are there (on YARN Spark waits up to 30 s for 80 %)
            "--conf", "spark.scheduler.minRegisteredResourcesRatio=0"]
    # (The JDBC drivers and S3A are on every driver's and executor's class path: spark-defaults.)
    argv += [str(script), t.direction, step_id, *args]
    say(f"running the Spark transfer job for {t.source} -> {t.target}")
    with tempfile.TemporaryDirectory(prefix="corral-transfer-") as tmp:
        report = Path(tmp) / "reason"
        code = subprocess.run(argv, env={**os.environ, REPORT_ENV: str(report)}).returncode
        if code != 0:
            reason = report.read_text() if report.exists() else f"the Spark job exited with code {code}"
            say(f"{t.direction} failed: {reason}")
            say(f"{t.target} was left as it was")
    return code


def main() -> None:
    direction, args = sys.argv[1], sys.argv[2:]
    step_id = os.environ.get("CORRAL_STEP_ID", "manual")
    try:
        t = parse(direction, args)
    except ValueError as exc:
        say(f"bad arguments: {exc}")
        sys.exit(2)
    try:
        code = run_distcp(t, step_id) if t.is_copy else run_spark(t, step_id, args)
    except RuntimeError as exc:
        say(str(exc))
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
