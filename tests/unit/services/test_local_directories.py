"""Every Hadoop default that puts files in the host's /tmp (directly or through
hadoop.tmp.dir) is, as rendered by Corral, in the node's own directory; the few that are
not name a path in HDFS or a daemon Corral never runs. The defaults come from the release's
own *-default.xml files, so a new one in a Hadoop upgrade fails this test."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile

from corral.control.views import effective_properties
from corral.domain.states import NodeRole
from corral.runtime import hadoop
from corral.services.registry import get_service
from tests.unit.services.test_hadoop_services import files, site, view

DEFAULTS = {"core-default.xml": "core-site.xml", "hdfs-default.xml": "hdfs-site.xml",
            "yarn-default.xml": "yarn-site.xml", "mapred-default.xml": "mapred-site.xml"}
# Not on a node's local disk, or never opened by a daemon Corral runs.
ELSEWHERE = {
    "yarn.app.mapreduce.am.staging-dir": "a path in HDFS (the default file system)",
    "yarn.nodemanager.remote-app-log-dir": "a path in HDFS",
    "nfs.dump.dir": "the HDFS NFS gateway",
    "dfs.journalnode.edits.dir": "JournalNodes (HA NameNodes)",
    "dfs.provided.aliasmap.inmemory.leveldb.dir": "provided storage",
    "yarn.timeline-service.entity-group-fs-store.active-dir": "the timeline service (disabled)",
    "yarn.timeline-service.entity-group-fs-store.done-dir": "the timeline service (disabled)",
    "mapreduce.jvm.system-properties-to-log": "a list of property names",
}
# Defaults in YarnConfiguration's code, not in yarn-default.xml (empty there).
CODE_DEFAULTS = ("yarn.node-attribute.fs-store.root-dir", "yarn.node-labels.fs-store.root-dir")


def release_defaults() -> dict[str, dict[str, str]]:
    """Per *-default.xml, the properties whose default is under /tmp or hadoop.tmp.dir."""
    found: dict[str, dict[str, str]] = {name: {} for name in DEFAULTS}
    for jar in (hadoop.ensure_hadoop() / "lib").glob("hadoop-*.jar"):  # `make setup` fetched it
        with zipfile.ZipFile(jar) as archive:
            for name in set(DEFAULTS) & set(archive.namelist()):
                for prop in ET.fromstring(archive.read(name)).iter("property"):
                    value = (prop.findtext("value") or "").strip()
                    if "/tmp" in value or "hadoop.tmp.dir" in value or "java.io.tmpdir" in value:
                        found[name][prop.findtext("name") or ""] = value
    return found


def expand(value: str, props: dict[str, str]) -> str:
    """Hadoop's ${var} expansion from the node's own properties; ${env.NAME:-default} as
    in a daemon, where NAME is unset (in a YARN container LOCAL_DIRS is its node's)."""
    for _ in range(10):
        value = re.sub(r"\$\{env\.\w+:-([^}]*)\}", r"\1", value)
        value = re.sub(r"\$\{([^}:]+)\}", lambda m: props.get(m.group(1), m.group(0)), value)
    return value


def test_hadoop_defaults_under_tmp_are_in_the_nodes_directory() -> None:
    defaults = release_defaults()
    assert "hadoop.tmp.dir" in defaults["core-default.xml"]  # the scan sees Hadoop's own files
    v = view(workers=((NodeRole.CORE, "local.medium"), (NodeRole.TASK, "local.medium")))
    for node in v.nodes:
        rendered = files(v, node)
        props = {k: val for f in DEFAULTS.values() for k, val in site(rendered[f]).items()}
        for default_file, names in defaults.items():
            for name, default in names.items():
                if name in ELSEWHERE:
                    continue
                value = expand(props.get(name, default), props)
                local = [p.removeprefix("file://") for p in value.split(",")]
                assert all(p.startswith(node.directory + "/") for p in local), (node.role, name, value)
        for name in CODE_DEFAULTS:
            assert expand(props[name], props).startswith(f"file://{node.directory}/data/"), name


def test_every_yarn_container_keeps_temporary_files_in_its_own_directory() -> None:
    v = view()
    yarn = site(files(v, v.nodes[1])["yarn-site.xml"])
    # {{PWD}}: the launch script's $PWD, the container's directory (YARN removes it after).
    assert "TMPDIR={{PWD}}/tmp" in yarn["yarn.nodemanager.admin-env"].split(",")


def test_spark_without_hdfs_names_no_hadoop_tmp_dir_under_tmp() -> None:
    v = view(services=("spark",))
    props, _ = effective_properties(v)
    assert props["spark-defaults"]["spark.hadoop.hadoop.tmp.dir"] == "${java.io.tmpdir}/hadoop"
    for node in v.nodes:
        (java_opts,) = [f.content for f in get_service("spark").config_files(v, node, props) if f.path.endswith("java-opts")]
        assert java_opts == f'"-Djava.io.tmpdir={node.directory}/tmp"\n'
