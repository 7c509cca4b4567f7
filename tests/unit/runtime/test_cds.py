"""The Spark class-data archive: its name follows what the JVM checks, it is built once and
atomically, a failed training leaves nothing, and every Spark JVM is set up to map it.
(That the JVMs really map it is asserted on live clusters in test_steps, test_hadoop and
test_hive.)"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from corral.control.views import effective_properties
from corral.domain.states import NodeRole
from corral.runtime import cds
from corral.services.base import ClusterView, NodeView
from corral.services.hadoop_common import launcher_files
from corral.services.hive import HiveService
from corral.services.spark import CDS_OPTS, SPARK_JARS, SparkService

JAVA_HOME = os.environ.get("JAVA_HOME") or str(Path(os.path.realpath("/usr/bin/java")).parent.parent)


@pytest.fixture(autouse=True)
def anchors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cds, "ANCHORS", tmp_path / "anchors")
    return tmp_path / "anchors"


def fake_spark(home: Path, script: str, tag: str = "") -> Path:
    """A Spark home with two jars (their content varies with ``tag``) and a spark-submit
    that runs ``script`` (bash)."""
    (home / "jars").mkdir(parents=True)
    for name in ("a.jar", "b.jar"):
        (home / "jars" / name).write_bytes(b"jar " + name.encode() + tag.encode())
    (home / "bin").mkdir()
    submit = home / "bin" / "spark-submit"
    submit.write_text("#!/bin/bash\n" + textwrap.dedent(script))
    submit.chmod(0o755)
    return home


# Writes the file named by -XX:ArchiveClassesAtExit=..., as the JVM does at exit.
WRITES_ARCHIVE = """
for arg in "$@"; do
  for word in $arg; do
    case "$word" in *-XX:ArchiveClassesAtExit=*) echo archive > "${word##*ArchiveClassesAtExit=}" ;; esac
  done
done
"""


def test_the_name_follows_the_jars_not_where_they_are(tmp_path: Path) -> None:
    home = fake_spark(tmp_path / "spark", "exit 0")
    first = cds.archive_path(tmp_path / "cache", JAVA_HOME, "spark", str(home))
    assert first == cds.archive_path(tmp_path / "cache", JAVA_HOME, "spark", str(home))
    assert first.parent == tmp_path / "cache" / "anchored" / "cds" and first.name.startswith("spark-")
    assert first.suffix == ".jsa"
    copy = tmp_path / "elsewhere" / "spark"  # a host's copy: same names, sizes and times
    shutil.copytree(home, copy)
    assert cds.archive_path(tmp_path / "other-cache", JAVA_HOME, "spark", str(copy)).name == first.name
    assert cds.anchor_path("spark", str(copy)) == cds.anchor_path("spark", str(home))
    (home / "jars" / "a.jar").write_bytes(b"a changed jar")  # the JVM would refuse the old archive
    assert cds.archive_path(tmp_path / "cache", JAVA_HOME, "spark", str(home)) != first
    other = fake_spark(tmp_path / "spark2", "exit 0", tag="other")
    assert cds.archive_path(tmp_path / "cache", JAVA_HOME, "spark", str(other)) != cds.archive_path(
        tmp_path / "cache", JAVA_HOME, "spark", str(home))


def test_an_archive_is_used_only_where_its_anchor_leads(tmp_path: Path, anchors: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = fake_spark(tmp_path / "spark", WRITES_ARCHIVE + 'echo "$@" > "$(dirname "$0")/../args"\n')
    cache = tmp_path / "cache"
    built = cds.build_spark_archive(cache, JAVA_HOME, str(home))
    anchor = cds.anchor_path("spark", str(home))
    assert anchor.parent == anchors and anchor.resolve() == home.resolve()
    assert f"spark.driver.extraClassPath={anchor}/jars/*" in (home / "args").read_text()  # trained through it
    copy = tmp_path / "host" / "spark"
    shutil.copytree(home, copy)
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(copy)) == built  # the latest deploy takes it over
    assert anchor.resolve() == copy.resolve()
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(home)) == built  # and back
    assert anchor.resolve() == home.resolve()
    shutil.rmtree(home)  # the original gone: the copy keeps it
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(copy)) == built
    assert anchor.resolve() == copy.resolve()
    anchor.unlink()  # /tmp emptied by a reboot
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(copy)) == built and anchor.is_symlink()
    (tmp_path / "no-tmp").write_text("")  # an anchor that cannot be made: no speed-up, no error
    monkeypatch.setattr(cds, "ANCHORS", tmp_path / "no-tmp" / "corral-cds")
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(copy)) is None


def test_options_map_the_archive_quietly_or_keep_the_jdk_default(tmp_path: Path) -> None:
    archive = tmp_path / "spark-x.jsa"
    assert cds.java_options(archive).split() == [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off",
                                                  "-Xlog:cds+dynamic=off"]
    assert cds.java_options(None) == "-Xshare:auto"
    assert cds.find_archive(tmp_path, JAVA_HOME, "spark", str(fake_spark(tmp_path / "spark", "exit 0"))) is None


def test_build_trains_once_and_records_the_spark_home(tmp_path: Path) -> None:
    home = fake_spark(tmp_path / "spark", WRITES_ARCHIVE + 'echo run >> "$(dirname "$0")/../runs"\n')
    cache = tmp_path / "cache"
    built = cds.build_spark_archive(cache, JAVA_HOME, str(home))
    assert built.read_text() == "archive\n"
    assert cds.find_archive(cache, JAVA_HOME, "spark", str(home)) == built
    assert json.loads(built.with_suffix(".json").read_text()) == {"kind": "spark", "home": str(home),
                                                                   "java_home": JAVA_HOME}
    assert cds.build_spark_archive(cache, JAVA_HOME, str(home)) == built
    assert (home / "runs").read_text() == "run\n"  # the second call found it
    assert sorted(p.name for p in built.parent.iterdir()) == sorted([built.name, built.with_suffix(".json").name,
                                                                      ".build.lock"])


def test_a_failed_training_raises_with_its_output_and_leaves_no_archive(tmp_path: Path) -> None:
    home = fake_spark(tmp_path / "spark", WRITES_ARCHIVE + "echo 'py4j said no' >&2\nexit 3\n")
    with pytest.raises(RuntimeError, match=r"exit 3\):\npy4j said no"):
        cds.build_spark_archive(tmp_path / "cache", JAVA_HOME, str(home))
    assert [p.name for p in cds.archive_dir(tmp_path / "cache").iterdir()] == [".build.lock"]


def test_archives_of_removed_or_changed_runtimes_are_pruned(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gone = fake_spark(tmp_path / "old", WRITES_ARCHIVE)
    old = cds.build_spark_archive(cache, JAVA_HOME, str(gone))
    changed = fake_spark(tmp_path / "changed", WRITES_ARCHIVE, tag="changed")
    before = cds.build_spark_archive(cache, JAVA_HOME, str(changed))
    kept = cds.build_spark_archive(cache, JAVA_HOME, str(fake_spark(tmp_path / "kept", WRITES_ARCHIVE, tag="kept")))
    shutil.rmtree(gone)  # a removed virtual environment
    (changed / "jars" / "a.jar").write_bytes(b"reinstalled")  # the same path, other jars
    orphan = cds.archive_dir(cache) / "spark-0123456789abcdef.jsa"  # an interrupted build's
    orphan.write_bytes(b"x")
    killed = cds.archive_dir(cache) / "spark-0123456789abcdef.4242.partial"  # a killed build's
    killed.write_bytes(b"x")
    after = cds.build_spark_archive(cache, JAVA_HOME, str(changed))
    assert after != before
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert not before.exists() and not before.with_suffix(".json").exists()
    assert not orphan.exists() and not killed.exists()
    assert kept.exists() and after.exists()


def _view(services: tuple[str, ...]) -> ClusterView:
    nodes = (NodeView(node_id="n-1", role=NodeRole.MASTER, address="127.7.0.1", directory="/n/1", instance_type="local.small"),
             NodeView(node_id="n-2", role=NodeRole.CORE, address="127.7.0.2", directory="/n/2", instance_type="local.medium"))
    return ClusterView(cluster_id="c-t", release="corral-1.0", services=services, nodes=nodes, user_configurations={})


@pytest.mark.parametrize("services", [("spark",), ("hdfs", "yarn", "spark"), ("hdfs", "spark", "hive")])
def test_every_spark_class_path_starts_with_the_archived_jars(services: tuple[str, ...]) -> None:
    view = _view(services)
    props = effective_properties(view)[0]
    defaults = props["spark-defaults"]
    for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath"):
        assert defaults[key].split(":")[0] == SPARK_JARS
    assert defaults["spark.driver.defaultJavaOptions"] == defaults["spark.executor.defaultJavaOptions"] == CDS_OPTS
    if "yarn" in services:
        assert defaults["spark.yarn.am.extraClassPath"].split(":")[0] == SPARK_JARS
        assert defaults["spark.yarn.am.extraJavaOptions"] == CDS_OPTS
    for node in view.nodes:
        for comp in SparkService().components(view, node, props):
            assert comp.env["SPARK_DAEMON_CLASSPATH"].split(":")[0] == SPARK_JARS
            assert CDS_OPTS in comp.env["SPARK_DAEMON_JAVA_OPTS"].split()
    if "hive" in services:
        metastore = next(c for c in HiveService().components(view, view.master, props) if c.name == "hive-metastore")
        assert metastore.argv[metastore.argv.index("-cp") + 1].split(":")[0] == SPARK_JARS
        assert CDS_OPTS in metastore.argv


def test_the_hadoop_launcher_puts_the_archived_jars_first_and_maps_the_archive() -> None:
    view = _view(("hdfs", "yarn"))
    launcher = next(f for f in launcher_files(view.master, {}) if f.path.endswith("/corral-hadoop"))
    assert 'cp="$HADOOP_HOME/lib/*:' in launcher.content
    assert 'opts="' in launcher.content and "${HADOOP_CDS_OPTS}" in launcher.content.split('opts="', 1)[1].split("\n")[0]
