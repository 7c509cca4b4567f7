"""Cluster specs: pydantic shape checks and whole-spec checks, each naming the exact field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from corral.domain.spec import ClusterSpec, StepRequest, validate_cluster_spec
from corral.domain.states import ActionOnFailure, NodeRole, StepType
from corral.errors import FieldError, ValidationFailed, format_loc
from tests.unit.helpers import spec_dict


def shape_errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        ClusterSpec.model_validate(data)
    return info.value.errors()


def spec_errors(data: dict[str, Any]) -> list[FieldError]:
    spec = ClusterSpec.model_validate(data)
    with pytest.raises(ValidationFailed) as info:
        validate_cluster_spec(spec)
    return info.value.errors


def only(errors: list[FieldError]) -> FieldError:
    assert len(errors) == 1, errors
    return errors[0]


# -- pydantic: shapes and single fields ----------------------------------------------------------


def test_a_valid_spec_passes_both_checks() -> None:
    spec = ClusterSpec.model_validate(spec_dict())
    validate_cluster_spec(spec)
    assert spec.release == "corral-1.0"
    assert spec.count(NodeRole.CORE) == 2
    assert spec.group(NodeRole.TASK) is None


def test_unknown_instance_type_names_the_group_field() -> None:
    data = spec_dict(node_groups=[{"role": "MASTER"}, {"role": "CORE", "instance_type": "local.huge", "count": 2}])
    errors = shape_errors(data)
    assert [e["loc"] for e in errors] == [("node_groups", 1, "instance_type")]
    assert "local.huge" in errors[0]["msg"]


def test_unknown_role_names_the_group_field() -> None:
    errors = shape_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "WORKER"}]))
    assert [e["loc"] for e in errors] == [("node_groups", 1, "role")]


def test_unknown_release_is_rejected() -> None:
    errors = shape_errors(spec_dict(release="emr-6.0"))
    assert [e["loc"] for e in errors] == [("release",)]


def test_unknown_keys_are_rejected_where_they_are() -> None:
    errors = shape_errors(spec_dict(node_groups=[{"role": "MASTER", "size": 3}, {"role": "CORE"}]))
    assert [(e["loc"], e["type"]) for e in errors] == [(("node_groups", 0, "size"), "extra_forbidden")]


def test_group_count_is_bounded() -> None:
    errors = shape_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "CORE", "count": 65}]))
    assert [e["loc"] for e in errors] == [("node_groups", 1, "count")]
    errors = shape_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "CORE", "count": -1}]))
    assert [e["loc"] for e in errors] == [("node_groups", 1, "count")]


def test_bad_step_in_spec_names_the_step() -> None:
    errors = shape_errors(spec_dict(steps=[{"type": "shell", "args": ["true"]}, {"type": "pig", "args": []}]))
    assert [e["loc"] for e in errors] == [("steps", 1, "type")]


def test_property_values_from_yaml_scalars_are_stringified() -> None:
    spec = ClusterSpec.model_validate(spec_dict(configurations=[{
        "classification": "spark-defaults",
        "properties": {"spark.executor.cores": 2, "spark.eventLog.enabled": True, "spark.speculation": False,
                       "spark.memory.fraction": 0.6, "spark.app.name": "x"},
    }]))
    assert spec.configurations[0].properties == {
        "spark.executor.cores": "2", "spark.eventLog.enabled": "true", "spark.speculation": "false",
        "spark.memory.fraction": "0.6", "spark.app.name": "x",
    }


def test_services_and_step_types_are_case_insensitive() -> None:
    spec = ClusterSpec.model_validate(spec_dict(services=["Spark"], steps=[{"type": "shell", "args": ["true"]}]))
    assert spec.services == ["spark"]
    assert spec.steps[0].type is StepType.SHELL
    assert spec.steps[0].action_on_failure is ActionOnFailure.CONTINUE
    assert StepRequest.model_validate({"type": "Spark"}).type is StepType.SPARK


# -- validate_cluster_spec: the whole spec --------------------------------------------------------


def test_unknown_service_names_its_index() -> None:
    err = only(spec_errors(spec_dict(services=["spark", "hive"])))
    assert err.loc == ("services", 1)
    assert "hive" in err.msg


def test_no_master_group() -> None:
    err = only(spec_errors(spec_dict(node_groups=[{"role": "CORE", "count": 2}])))
    assert err.loc == ("node_groups",)
    assert "MASTER" in err.msg


@pytest.mark.parametrize("count", [0, 2, 3])
def test_master_count_must_be_one_and_names_the_master_group(count: int) -> None:
    # The MASTER group is second here: the index must be the group's, not 0.
    err = only(spec_errors(spec_dict(node_groups=[{"role": "CORE", "count": 2}, {"role": "MASTER", "count": count}])))
    assert err.loc == ("node_groups", 1, "count")
    assert f"got {count}" in err.msg


def test_spark_needs_a_core_node() -> None:
    err = only(spec_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "TASK", "count": 2},
                                                  {"role": "CORE", "count": 0}])))
    assert err.loc == ("node_groups", 2, "count")
    assert "CORE" in err.msg


def test_spark_without_any_core_group() -> None:
    err = only(spec_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "TASK", "count": 2}])))
    assert err.loc == ("node_groups",)
    assert "CORE" in err.msg


def test_duplicated_group_roles() -> None:
    errors = spec_errors(spec_dict(node_groups=[{"role": "MASTER"}, {"role": "CORE", "count": 1},
                                                {"role": "CORE", "count": 1}]))
    err = only(errors)
    assert err.loc == ("node_groups", 2, "role")  # the second CORE group is the one at fault
    assert "more than one CORE group" in err.msg


def test_unknown_configuration_classification_names_it() -> None:
    err = only(spec_errors(spec_dict(configurations=[
        {"classification": "spark-defaults", "properties": {"spark.executor.cores": "1"}},
        {"classification": "hive-site", "properties": {}},
    ])))
    assert err.loc == ("configurations", 1, "classification")
    assert "hive-site" in err.msg and "spark-defaults" in err.msg  # says what is known


def test_bootstrap_paths_must_be_absolute_but_are_never_opened(tmp_path: Path) -> None:
    errors = spec_errors(spec_dict(bootstrap_actions=[
        {"path": str(tmp_path / "missing.sh")},  # the client's file: whether it exists here does not matter
        {"path": "relative/boot.sh"},
    ]))
    assert [(e.loc, "absolute" in e.msg) for e in errors] == [(("bootstrap_actions", 1, "path"), True)]


def test_a_bootstrap_sha256_is_a_hash() -> None:
    with pytest.raises(ValidationError) as info:
        ClusterSpec.model_validate(spec_dict(bootstrap_actions=[{"path": "/x.sh", "sha256": "ABC"}]))
    assert info.value.errors()[0]["loc"] == ("bootstrap_actions", 0, "sha256")


def test_step_files_map_paths_to_hashes() -> None:
    ok = StepRequest.model_validate({"type": "spark", "args": ["/a.py"], "files": {"/a.py": "a" * 64}})
    assert ok.files == {"/a.py": "a" * 64}
    with pytest.raises(ValidationError) as info:
        StepRequest.model_validate({"type": "spark", "args": ["/a.py"], "files": {"/a.py": "not-a-hash"}})
    assert info.value.errors()[0]["loc"] == ("files", "/a.py")


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    errors = spec_errors(spec_dict(
        node_groups=[{"role": "MASTER", "count": 2}, {"role": "CORE"}],
        bootstrap_actions=[{"path": "nope.sh"}],
    ))
    assert {e.loc for e in errors} == {("node_groups", 0, "count"), ("bootstrap_actions", 0, "path")}


def test_validation_failed_message_uses_dotted_locations() -> None:
    spec = ClusterSpec.model_validate(spec_dict(node_groups=[{"role": "CORE"}, {"role": "MASTER", "count": 2}]))
    with pytest.raises(ValidationFailed, match=r"node_groups\[1\]\.count: MASTER count must be 1"):
        validate_cluster_spec(spec)
    assert format_loc(("configurations", 0, "properties", "a.b")) == "configurations[0].properties.a.b"
    assert str(FieldError((), "whole thing")) == "whole thing"


# -- values each configuration file can carry (corral.formats) ---------------------------------------

HADOOP = ["hdfs", "yarn", "mapreduce", "spark"]


def test_the_issues_windows_path_is_accepted_and_a_nul_is_refused_naming_the_property() -> None:
    good = spec_dict(configurations=[{"classification": "spark-defaults", "properties": {"spark.corral.test": "C:\\temp\\new #x"}}])
    validate_cluster_spec(ClusterSpec.model_validate(good))
    err = only(spec_errors(spec_dict(configurations=[
        {"classification": "spark-defaults", "properties": {"spark.corral.test": "C:\\temp\0"}}])))
    assert str(err) == ("configurations[0].properties.spark.corral.test: the value contains a NUL character (U+0000) "
                        "at offset 7, which no configuration file can carry")


@pytest.mark.parametrize("classification, key, value, message", [
    ("core-site", "fs.x", "a\x07", "the value contains U+0007 at offset 1, a character XML 1.0 cannot carry"),
    ("hdfs-site", "dfs.x", "", "the value is empty: Hadoop's Configuration ignores an empty <value>"),
    ("yarn-site", " yarn.x", "1", "the name starts or ends with whitespace"),
    ("capacity-scheduler", "yarn.scheduler.capacity.x", "\ufffe", "the value contains U+FFFE at offset 0, a character XML"),
    ("mapred-site", "mapreduce.x", "{{secret:metastore.password}}", "the value contains '{{secret:'"),
    ("hadoop-env", "HADOOP_OPTS", "$HADOOP_OPTS\n-Dx", "the value contains a line break (U+000A) at offset 12"),
    ("hadoop-env", "HADOOP-OPTS", "x", "the name is not a shell variable name"),
    ("spark-env", "IFS", " ", "the name is a variable bash sets itself"),
    ("spark-defaults", "executor.memory", "1g", "the name does not start with 'spark.'"),
    ("spark-defaults", "spark.x", "\udcff", "the value contains a lone surrogate (U+DCFF)"),
])
def test_values_a_classifications_file_cannot_carry_are_refused_naming_the_property(classification: str, key: str,
                                                                                    value: str, message: str) -> None:
    # A first, valid configuration of the same classification: the loc names the second.
    ok = {"OK": "1"} if classification.endswith("-env") else {"spark.ok" if classification == "spark-defaults" else "ok": "1"}
    err = only(spec_errors(spec_dict(services=HADOOP, configurations=[{"classification": classification, "properties": ok},
                                                                       {"classification": classification, "properties": {key: value}}])))
    assert err.loc == ("configurations", 1, "properties", key)
    assert err.msg.startswith(message), err.msg


def test_an_empty_name_and_a_name_with_a_line_break_are_shown_quoted_on_one_line() -> None:
    errors = spec_errors(spec_dict(configurations=[{"classification": "spark-defaults",
                                                    "properties": {"": "x", "a\nb": "y", "spark.a\nb": "z"}}]))
    assert sorted(str(e) for e in errors) == [
        'configurations[0].properties[""]: the property name is empty',
        'configurations[0].properties["a\\nb"]: the name does not start with \'spark.\': Spark reads only such '
        "properties from spark-defaults.conf and would ignore it"]  # spark.a<LF>b: a properties file can carry it


def test_a_yaml_null_property_is_refused_not_written_as_none() -> None:
    errors = shape_errors(spec_dict(configurations=[{"classification": "spark-defaults", "properties": {"spark.x": None}}]))
    assert [e["loc"] for e in errors] == [("configurations", 0, "properties", "spark.x")]


def test_spec_fields_written_into_site_files_are_checked_too_without_quoting_secrets() -> None:
    storage = {"endpoint": "http://127.0.0.1:9000", "access_key": "AK\x01", "secret_key": "s3cr3t\0x"}
    metastore = {"type": "postgresql", "jdbc_url": "jdbc:postgresql://h/db?{{secret:object_storage.secret_key}}",
                 "username": "u", "password": "pw{{secret:ok}}", "warehouse_dir": "s3a://b/w"}
    errors = {e.loc: e.msg for e in spec_errors(spec_dict(services=[*HADOOP, "hive"], object_storage=storage,
                                                          metastore=metastore))}
    assert set(errors) == {("object_storage", "access_key"), ("object_storage", "secret_key"), ("metastore", "jdbc_url")}
    assert "XML 1.0 cannot carry" in errors[("object_storage", "access_key")]
    assert "NUL" in errors[("object_storage", "secret_key")] and "s3cr3t" not in errors[("object_storage", "secret_key")]
    assert "'{{secret:'" in errors[("metastore", "jdbc_url")]  # a password may contain it: it is never read as one
