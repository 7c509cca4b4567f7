"""object_storage, the external metastore and log_uri: spec checks, the properties every
client gets, and secrets kept out of what the API shows."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from corral.api.schemas import ClusterDetail, effective_configs
from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.domain.secrets import MASK, placeholder
from corral.domain.spec import ClusterSpec, StepRequest, validate_cluster_spec
from corral.errors import ValidationFailed
from corral.services.registry import get_service
from tests.unit.helpers import spec_dict
from tests.unit.services.test_hadoop_services import ALL, files, site, view

STORE = {"endpoint": "http://127.0.0.1:9000", "access_key": "AKIATEST", "secret_key": "very-secret-key"}
METASTORE = {"type": "postgresql", "jdbc_url": "jdbc:postgresql://127.0.0.1:5432/hms", "username": "hive",
             "password": "hms-password", "warehouse_dir": "s3://lake/warehouse/"}


def hadoop_spec(**extra: Any) -> ClusterSpec:
    return ClusterSpec.model_validate(spec_dict(services=[*ALL, "hive"], **extra))


@pytest.mark.parametrize("extra, loc, message", [
    ({"object_storage": {**STORE, "endpoint": "127.0.0.1:9000"}}, ("object_storage", "endpoint"), "http:// or https://"),
    ({"object_storage": {"access_key": "a"}}, ("object_storage", "secret_key"), "Field required"),
    ({"log_uri": "hdfs:///logs"}, ("log_uri",), "s3a://bucket/prefix"),
    ({"metastore": {**METASTORE, "jdbc_url": "jdbc:mysql://h/db"}}, ("metastore", "jdbc_url"), "jdbc:postgresql://"),
    ({"metastore": {**METASTORE, "warehouse_dir": "/user/hive"}}, ("metastore", "warehouse_dir"), "s3a://bucket/path"),
])
def test_shapes_are_checked_where_they_are(extra: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        hadoop_spec(**extra)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [loc] and message in errors[0]["msg"]


@pytest.mark.parametrize("extra, loc, message", [
    ({"log_uri": "s3a://logs/corral"}, ("log_uri",), "needs object_storage"),
    ({"metastore": METASTORE}, ("metastore", "warehouse_dir"), "set object_storage"),
])
def test_whole_spec_checks(extra: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_cluster_spec(hadoop_spec(**extra))
    assert [(e.loc, message in e.msg) for e in info.value.errors] == [(loc, True)]


def test_core_site_gets_s3a_settings_with_the_secret_as_a_placeholder() -> None:
    v = view(services=ALL)
    v = type(v)(**{**v.__dict__, "object_storage": {**STORE, "secret_key": None, "region": "eu-1", "path_style_access": True}})
    core = site(files(v, v.nodes[0])["core-site.xml"])
    assert core["fs.s3a.endpoint"] == "http://127.0.0.1:9000" and core["fs.s3a.connection.ssl.enabled"] == "false"
    assert core["fs.s3a.access.key"] == "AKIATEST" and core["fs.s3a.endpoint.region"] == "eu-1"
    assert core["fs.s3a.secret.key"] == placeholder("object_storage.secret_key")
    spark = get_service("spark").default_properties(v)["spark-defaults"]
    assert "${HADOOP_HOME}/s3/*" in spark["spark.driver.extraClassPath"]
    assert not any(k.startswith("spark.hadoop.fs.s3a") for k in spark)  # core-site has them


def test_spark_only_clusters_get_s3a_through_spark_defaults() -> None:
    v = view(services=("spark",))
    v = type(v)(**{**v.__dict__, "object_storage": {**STORE, "secret_key": None, "region": "us-east-1"}})
    spark = get_service("spark").default_properties(v)["spark-defaults"]
    assert spark["spark.hadoop.fs.s3a.secret.key"] == placeholder("object_storage.secret_key")
    assert spark["spark.executor.extraClassPath"].endswith("${HADOOP_HOME}/jdbc/*")


def test_external_metastore_and_secrets_never_shown(cp: ControlPlane) -> None:
    spec = hadoop_spec(object_storage=STORE, metastore=METASTORE, log_uri="s3://lake/logs/",
                       configurations=[{"classification": "core-site", "properties": {"my.token": "tok-123456"}}])
    validate_cluster_spec(spec)
    cluster, _ = clusters.create_cluster(cp, spec)
    row = clusters.get_cluster(cp, cluster.id)
    assert row.secrets == {"object_storage.secret_key": "very-secret-key", "metastore.password": "hms-password"}
    assert row.log_uri == "s3a://lake/logs"
    with cp.store.session() as s:
        loaded = clusters.load_cluster(s, cluster.id)
        for i, node in enumerate(loaded.nodes):
            node.address, node.directory = f"127.99.0.{10 + i}", f"/nodes/{node.id}"
    row = clusters.get_cluster(cp, cluster.id)
    shown = ClusterDetail.of(row).model_dump_json() + "".join(c.model_dump_json() for c in effective_configs(row))
    for secret in ("very-secret-key", "hms-password", "tok-123456"):
        assert secret not in shown
    hive = next(c for c in effective_configs(row) if c.classification == "hive-site").properties
    assert hive["javax.jdo.option.ConnectionURL"] == "jdbc:postgresql://127.0.0.1:5432/hms"
    assert hive["javax.jdo.option.ConnectionPassword"] == MASK
    assert hive["hive.metastore.warehouse.dir"] == "s3a://lake/warehouse"


def test_steps_with_s3a_locations_need_object_storage(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, hadoop_spec())
    with pytest.raises(ValidationFailed) as info:
        steps.add_steps(cp, cluster.id, [StepRequest(type="DATA_IMPORT", args=["--from", "s3a://b/x", "--to", "/x"])])
    assert [(e.loc, e.msg) for e in info.value.errors] == [
        (("type",), "this DATA_IMPORT step uses s3a:// locations: the cluster spec needs object_storage")]


@pytest.mark.parametrize("url", ["jdbc:mysql://db:3306/hms", "jdbc:mariadb://db:3306/hms"])
def test_a_mysql_metastore_gets_latin1_tables_like_hives_own_schema(url: str) -> None:
    v = view(services=("hdfs", "spark", "hive"))
    v = type(v)(**{**v.__dict__, "object_storage": STORE, "metastore": {**METASTORE, "type": "mysql", "jdbc_url": url}})
    hive = get_service("hive").default_properties(v)["hive-site"]
    assert hive["datanucleus.rdbms.mysql.characterSet"] == "latin1"
    assert hive["datanucleus.rdbms.datastoreAdapterClassName"].endswith(".MySQLAdapter")
    assert hive["javax.jdo.option.ConnectionDriverName"] == "org.mariadb.jdbc.Driver"
    postgres = type(v)(**{**v.__dict__, "metastore": METASTORE})
    assert "datanucleus.rdbms.mysql.characterSet" not in get_service("hive").default_properties(postgres)["hive-site"]
