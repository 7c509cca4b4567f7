"""The daemons have no authentication, so what lets anyone who reaches one run code is off
in every rendered configuration (YARN's REST submission, Spark's REST submission server,
the UIs' kill actions), and every address a daemon listens on is its node's."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from corral.control.views import effective_properties
from corral.domain.states import NodeRole
from corral.services import hadoop_common as hc
from corral.services.base import ClusterView, NodeView
from corral.services.registry import get_service

ALL = ("hdfs", "yarn", "mapreduce", "spark", "hive")


def _view(services: tuple[str, ...], user: dict[str, dict[str, str]] | None = None) -> ClusterView:
    nodes = (NodeView(node_id="n-2", role=NodeRole.MASTER, address="198.18.3.2", directory="/h/n-2", instance_type="local.large"),
             NodeView(node_id="n-3", role=NodeRole.CORE, address="198.18.3.3", directory="/h/n-3", instance_type="local.large"))
    return ClusterView(cluster_id="c-hard", release="corral-1.0", services=services, nodes=nodes,
                       user_configurations=user or {})


def _files(v: ClusterView, n: NodeView) -> dict[str, str]:
    props, _ = effective_properties(v)
    return {f.path.rsplit("/", 1)[1]: f.content for s in v.services for f in get_service(s).config_files(v, n, props)}


def _site(text: str) -> dict[str, str]:
    return {p.findtext("name") or "": p.findtext("value") or "" for p in ET.fromstring(text).iter("property")}


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {k: v.strip() for k, v in pairs}


@pytest.mark.parametrize("node", [0, 1])
def test_yarn_turns_off_rest_submission_ui_kills_and_manifest_aux_services(node: int) -> None:
    v = _view(ALL)
    yarn = _site(_files(v, v.nodes[node])["yarn-site.xml"])
    assert yarn["yarn.webapp.enable-rest-app-submissions"] == "false"
    assert yarn["yarn.resourcemanager.webapp.ui-actions.enabled"] == "false"
    assert yarn["yarn.nodemanager.aux-services.manifest.enabled"] == "false"


@pytest.mark.parametrize("services", [("spark",), ("hdfs", "yarn", "spark"), ALL])
def test_spark_turns_off_its_rest_submission_server_and_ui_kills(services: tuple[str, ...]) -> None:
    v = _view(services)
    for n in v.nodes:
        spark = _properties(_files(v, n)["spark-defaults.conf"])
        assert spark["spark.master.rest.enabled"] == "false"
        assert spark["spark.ui.killEnabled"] == "false"


def test_a_user_may_turn_one_back_on_for_their_cluster() -> None:
    v = _view(ALL, user={"yarn-site": {"yarn.webapp.enable-rest-app-submissions": "true"}})
    yarn = _site(_files(v, v.nodes[0])["yarn-site.xml"])
    assert yarn["yarn.webapp.enable-rest-app-submissions"] == "true"


_ADDRESS_KEY = re.compile(r"(\.|-)(address|hostname|bind-host|bind\.host)$")


def test_every_listening_address_in_the_site_files_is_the_nodes() -> None:
    """A wildcard (0.0.0.0) would expose a daemon on every interface of a host, also on a
    network that is not the cluster's. (The MapReduce shuffle handler has no address
    setting and binds all addresses: it serves only requests signed with the job's token.)"""
    v = _view(ALL)
    for n in v.nodes:
        for name, text in _files(v, n).items():
            if not name.endswith("-site.xml"):
                continue
            for key, value in _site(text).items():
                if not _ADDRESS_KEY.search(key) or key.startswith("fs.s3a"):
                    continue
                host = value.rsplit(":", 1)[0] if ":" in value and not value.startswith("http") else value
                host = re.sub(r"^https?://", "", host).split(":")[0]
                assert host in ("198.18.3.2", "198.18.3.3", hc.NODE_ADDRESS), f"{name}: {key}={value}"


def test_spark_daemons_bind_their_node() -> None:
    v = _view(("spark",))
    props, _ = effective_properties(v)
    for n in v.nodes:
        for component in get_service("spark").components(v, n, props):
            assert component.env.get("SPARK_LOCAL_IP") == n.address, component.name
            if "--host" in component.argv:
                assert component.argv[component.argv.index("--host") + 1] == n.address
