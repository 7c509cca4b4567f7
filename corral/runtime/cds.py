"""Class-data sharing (AppCDS) archives for the Spark and Hadoop JVMs, one per host and runtime.

A JVM spends much of its start-up parsing and verifying the classes it loads from jars:
~15,000 for a Spark driver, thousands for a Hadoop client with S3A's AWS SDK. A dynamic
CDS archive (layered over the JDK's own) holds them ready to map. On this project's
2-core machine a small PySpark job's driver went from 12.7 s to 8.3 s of CPU.

Two archives, each trained once per host (``python -m corral.runtime.cds``; ``make
setup`` runs it) by a JVM run with ``-XX:ArchiveClassesAtExit``:
- ``spark``: a short local-mode PySpark job (``cds_training``: DataFrames, SQL, files,
  Python, Hive). Used by drivers, executors, the Spark daemons and the Hive metastore.
- ``hadoop``: one ``hadoop fs`` over the local file system, HDFS and S3A (the last two at
  closed ports, so they fail fast after loading their clients). Used by Corral's Hadoop
  launcher, for tools and daemons alike.

An archive is named after a digest of what the JVM checks when it maps it (the JDK build
and path, the jars' names, sizes and modification times), so a changed JDK or runtime
means a new archive, never a stale one. A JVM maps it only when its class path *begins*
with the training run's (``$SPARK_HOME/jars/*`` or ``$HADOOP_HOME/lib/*``); Corral puts
that first in the class paths it builds. Anything that does not match (a user's class
path) only loses the speed-up: CDS's warnings are switched off and the JVM loads from the jars.

Archives are shipped to hosts with the runtime (``corral.runtime.archives``). JDK 17
records each class-path entry's absolute path and refuses the archive when a recorded
path does not lead to the same file (measured: ``-Xshare:on`` fails with "shared class
paths mismatch" for a copy of the runtime elsewhere), and a host's runtime cache is in its
login user's home. So the training run reads the jars through an *anchor*, a symlink at a
path that is the same on every machine (``ANCHORS/<kind>-<content digest>``), and every
JVM that maps the archive needs that anchor to lead to its own runtime: ``find_archive``
makes it so (measured: a JVM with its real class path then maps an archive trained on
another machine; what the JVM compares is the files, by identity, and their sizes and
times, which the runtime archives keep). Only one runtime per machine can own an anchor,
and the latest deploy there takes it: the runtime in use now beats a copy left on disk (an
uninstalled agent's, a test's), and a JVM started meanwhile from another copy only runs
without the archive (its class path no longer matches, so the JVM falls back to the
jars). Measured on the 2-core machine, a local-mode PySpark job took 6.3 s of CPU with the
Spark archive and 11.8 s without; ``hadoop fs -ls`` 0.7 s and 1.1 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable

from corral.runtime import file_lock, java_version_output

# CDS prints a mismatch warning on stdout by default, which would corrupt tool output.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
TRAINING_TIMEOUT = 600
KINDS = {"spark": "jars", "hadoop": "lib"}  # archive kind -> the runtime's jar directory
# The same path on every machine (see above); sticky and world-writable like /tmp itself, so
# each user can anchor a runtime. Removed at a reboot with /tmp: agents make anchors again.
ANCHORS = Path("/tmp/corral-cds")

Training = Callable[[Path, Path], "subprocess.CompletedProcess[str]"]  # (partial archive, work dir)
WORK_PREFIX = "training-"


def _scratch_env(work: Path) -> dict[str, str]:
    """The training run's environment: its temporary files in its own work directory."""
    return {**os.environ, "TMPDIR": str(work)}


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])


def _java_identity(java_home: str) -> str:
    java = str(Path(java_home, "bin", "java").resolve())
    return f"{java}\n{java_version_output(java)}"


def _jars_identity(jars: Path) -> str:
    """What the JVM checks of each jar, without the directory's path: names, sizes and
    modification times in seconds (what the JDK compares, and what tar keeps)."""
    rows = []
    for jar in sorted(jars.glob("*.jar")):
        st = jar.stat()
        rows.append(f"{jar.name} {st.st_size} {int(st.st_mtime)}")
    return "\n".join(rows)


def archive_dir(cache: Path) -> Path:
    # Not cache/cds, where archives trained at their runtime's own path were kept.
    return cache / "anchored" / "cds"


def anchor_path(kind: str, home: str) -> Path:
    digest = hashlib.sha256(_jars_identity(Path(home) / KINDS[kind]).encode()).hexdigest()[:16]
    return ANCHORS / f"{kind}-{digest}"


def archive_path(cache: Path, java_home: str, kind: str, home: str) -> Path:
    jars = Path(home) / KINDS[kind]
    identity = f"{_java_identity(java_home)}\n{anchor_path(kind, home)}\n{_jars_identity(jars)}"
    return archive_dir(cache) / f"{kind}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"


def ensure_anchor(kind: str, home: str) -> bool:
    """Point the anchor of ``home``'s jars at ``home`` (atomically, when it leads elsewhere
    or nowhere); whether it now leads there. False only when it cannot be made: another
    user's anchor in the sticky directory, or no writable /tmp."""
    anchor = anchor_path(kind, home)
    target = str(Path(home).resolve())
    try:
        if Path(os.readlink(anchor)).resolve() == Path(target):
            return True
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        if not ANCHORS.is_dir():
            ANCHORS.mkdir(parents=True, exist_ok=True)
            ANCHORS.chmod(0o1777)
        fresh = ANCHORS / f".{anchor.name}.{os.getpid()}"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(target)
        fresh.replace(anchor)  # atomic: a JVM starting meanwhile sees the old or the new one
    except OSError:
        return False  # another user's (the sticky directory) or no /tmp: no speed-up, nothing worse
    return True


def java_options(archive: Path | None) -> str:
    """The JVM options that map ``archive``; the JDK's defaults when there is none."""
    return f"-XX:SharedArchiveFile={archive} {QUIET}" if archive is not None else "-Xshare:auto"


def find_archive(cache: Path, java_home: str, kind: str, home: str) -> Path | None:
    """The archive for ``home``'s jars and this JDK, with its anchor made to lead to
    ``home`` (``ensure_anchor``: called at a deploy, it takes the anchor over from another
    copy); None when there is none or the anchor cannot be made."""
    path = archive_path(cache, java_home, kind, home)
    return path if path.is_file() and ensure_anchor(kind, home) else None


def _stale(meta: Path) -> bool:
    """An archive whose runtime is gone or has changed (a reinstalled virtual environment
    at the same path, a JDK update) can never be mapped again."""
    try:
        record = json.loads(meta.read_text())
        current = archive_path(meta.parent.parent.parent, record["java_home"], record["kind"], record["home"])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return True
    return current != meta.with_suffix(".jsa")


def _prune(directory: Path, keep: Path) -> None:
    for meta in directory.glob("[!.]*.json"):  # not the repository's .sha256-index.json
        if meta.with_suffix(".jsa") != keep and _stale(meta):
            meta.with_suffix(".jsa").unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
    for orphan in directory.glob("*.jsa"):  # e.g. from an interrupted build
        if not orphan.with_suffix(".json").exists() and orphan != keep:
            orphan.unlink(missing_ok=True)
    for partial in directory.glob("*.partial"):  # a killed build's (builds hold the lock)
        partial.unlink(missing_ok=True)
    for work in directory.glob(WORK_PREFIX + "*"):  # and its scratch directory
        shutil.rmtree(work, ignore_errors=True)


def _build(cache: Path, path: Path, record: dict[str, str], training: Training) -> Path:
    """Run ``training`` to write the archive at ``path`` (once; concurrent callers wait)."""
    with file_lock(archive_dir(cache) / ".build.lock"):
        if not path.is_file():
            partial = path.with_suffix(f".{os.getpid()}.partial")
            # The training run's scratch directory (its JVM's java.io.tmpdir and TMPDIR too)
            # is beside the archive, not in the host's /tmp: a killed build's is pruned.
            with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=path.parent) as work:
                try:
                    result = training(partial, Path(work))
                    if not partial.is_file():
                        raise RuntimeError(f"the training run wrote no archive (exit {result.returncode}):\n{_tail(result)}")
                    partial.rename(path)
                finally:
                    partial.unlink(missing_ok=True)
        path.with_suffix(".json").write_text(json.dumps(record))
        _prune(path.parent, keep=path)  # also when nothing was built: a reinstall leaves stale ones
    return path


def _anchored(kind: str, home: str) -> Path:
    """The anchor the training run reads ``home``'s jars through (see the module docstring)."""
    anchor = anchor_path(kind, home)
    ensure_anchor(kind, home)  # if another user's stands, its identical jars serve the training too
    if not (anchor / KINDS[kind]).is_dir():
        raise RuntimeError(f"cannot make the class-data anchor {anchor} (is {ANCHORS.parent} writable?)")
    return anchor


def build_spark_archive(cache: Path, java_home: str, spark_home: str, python: str = sys.executable) -> Path:
    def train(partial: Path, work: Path) -> subprocess.CompletedProcess[str]:
        anchor = _anchored("spark", spark_home)
        (work / "conf").mkdir()
        # As on nodes (corral.services.spark.java_opts_file): the launcher gives the driver
        # this java.io.tmpdir, where its Hive session and Spark's scratch files go.
        (work / "conf" / "java-opts").write_text(f'"-Djava.io.tmpdir={work}"\n')
        script = str(Path(str(resources.files("corral.runtime").joinpath("cds_training.py"))))
        env = {**_scratch_env(work), "SPARK_HOME": spark_home, "JAVA_HOME": java_home,
               "SPARK_CONF_DIR": str(work / "conf"), "PYSPARK_PYTHON": python, "SPARK_LOCAL_IP": "127.0.0.1"}
        argv = [f"{spark_home}/bin/spark-submit", "--master", "local[2]",
                "--conf", f"spark.driver.extraClassPath={anchor}/jars/*",
                "--conf", f"spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit={partial} {QUIET}",
                "--conf", f"spark.sql.warehouse.dir={work}/warehouse", script, str(work)]
        result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=TRAINING_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"the training job failed (exit {result.returncode}):\n{_tail(result)}")
        return result

    record = {"kind": "spark", "home": spark_home, "java_home": java_home}
    return _build(cache, archive_path(cache, java_home, "spark", spark_home), record, train)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def build_hadoop_archive(cache: Path, java_home: str, hadoop_home: str, java_options: str) -> Path:
    """``java_options``: the flags Corral's launcher passes (the Java 17 module openings)."""
    def train(partial: Path, work: Path) -> subprocess.CompletedProcess[str]:
        anchor = _anchored("hadoop", hadoop_home)
        (work / "conf").mkdir()
        (work / "conf" / "core-site.xml").write_text('<?xml version="1.0"?><configuration></configuration>\n')
        (work / "data").mkdir()
        (work / "data" / "file").write_text("training\n")
        port = _closed_port()
        # The HDFS and S3A listings fail at once (nothing listens), after their clients load.
        argv = [f"{java_home}/bin/java", *java_options.split(), f"-XX:ArchiveClassesAtExit={partial}", *QUIET.split(),
                f"-Djava.io.tmpdir={work}",
                "-cp", f"{anchor}/lib/*:{work}/conf", "org.apache.hadoop.fs.FsShell",
                "-D", f"fs.s3a.endpoint=http://127.0.0.1:{port}", "-D", "fs.s3a.path.style.access=true",
                "-D", "fs.s3a.access.key=training", "-D", "fs.s3a.secret.key=training",
                "-D", "fs.s3a.attempts.maximum=1", "-D", "fs.s3a.retry.limit=0", "-D", "fs.s3a.connection.timeout=2s",
                "-D", "ipc.client.connect.max.retries=0", "-D", "ipc.client.connect.max.retries.on.timeouts=0",
                "-ls", "-R", f"file://{work}/data", f"hdfs://127.0.0.1:{port}/", "s3a://corral-cds-training/"]
        env = {**_scratch_env(work), "JAVA_HOME": java_home}
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=TRAINING_TIMEOUT)

    record = {"kind": "hadoop", "home": hadoop_home, "java_home": java_home}
    return _build(cache, archive_path(cache, java_home, "hadoop", hadoop_home), record, train)


def main() -> int:
    from corral.agent.runtime import check_java  # noqa: PLC0415 - the agent's Java check, with its hints
    from corral.runtime import DeployError  # noqa: PLC0415
    from corral.runtime.hadoop import default_cache, ensure_hadoop  # noqa: PLC0415
    from corral.services.hadoop_common import DAEMON_JAVA_OPTS, JAVA_MODULE_OPTS  # noqa: PLC0415

    try:
        import pyspark  # noqa: PLC0415
    except ImportError:
        print("corral: pyspark is not installed; no class-data archives built", file=sys.stderr)
        return 1
    try:
        _, java_home = check_java(17)
        hadoop_home = str(ensure_hadoop(None, java_home))
    except DeployError as exc:
        print(f"corral: error: {exc}", file=sys.stderr)
        return 1
    cache = default_cache()
    spark_home = str(Path(pyspark.__file__).parent)
    builds: list[tuple[str, str, Callable[[], Path]]] = [
        ("Spark", spark_home, lambda: build_spark_archive(cache, java_home, spark_home)),
        ("Hadoop", hadoop_home, lambda: build_hadoop_archive(cache, java_home, hadoop_home,
                                                             f"{JAVA_MODULE_OPTS} {DAEMON_JAVA_OPTS}")),
    ]
    for name, home, build in builds:
        if find_archive(cache, java_home, name.lower(), home) is None:
            print(f"setup: building the {name} class-data archive (once)", file=sys.stderr, flush=True)
        try:
            print(build())
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            # An optimisation only: the JVMs run without it, just start slower.
            print(f"corral: warning: no {name} class-data archive ({exc}); its JVMs will start without it",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
