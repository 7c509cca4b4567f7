"""Spec files (YAML/JSON) and command-line flags merged over them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from corral.cli.specfile import DEFAULT_GROUPS, SpecFileError, SpecFlags, load_spec_file, merge_flags
from corral.domain.spec import ClusterSpec, validate_cluster_spec


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_json_load(tmp_path: Path) -> None:
    yaml_file = write(tmp_path, "name: demo\nnode_groups:\n  - role: MASTER\n  - {role: CORE, count: 2}\n")
    json_file = write(tmp_path, json.dumps({"name": "demo", "node_groups": [{"role": "MASTER"}]}), "c.json")
    assert load_spec_file(yaml_file) == {"name": "demo", "node_groups": [{"role": "MASTER"}, {"role": "CORE", "count": 2}]}
    assert load_spec_file(json_file)["node_groups"] == [{"role": "MASTER"}]


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\nnode_groups:\n  - role: MASTER\n   count: [1\n")
    with pytest.raises(SpecFileError) as info:
        load_spec_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid YAML at line 4")


def test_unclosed_bracket_names_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\nservices: [spark\nnode_groups: []\n")
    with pytest.raises(SpecFileError, match=r"invalid YAML at line \d+, column \d+"):
        load_spec_file(path)


@pytest.mark.parametrize(("text", "kind"), [("- name: a\n- name: b\n", "list"), ("just a string\n", "str"),
                                            ("", "NoneType"), ("42\n", "int")])
def test_a_spec_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    with pytest.raises(SpecFileError, match=f"must be a mapping.*got {kind}"):
        load_spec_file(write(tmp_path, text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecFileError, match="cannot read"):
        load_spec_file(tmp_path / "missing.yaml")


def test_relative_bootstrap_paths_are_relative_to_the_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "specs"
    (specs / "scripts").mkdir(parents=True)
    (specs / "scripts" / "boot.sh").write_text("#!/bin/sh\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the command runs from another folder
    path = write(specs, "name: d\nnode_groups: [{role: MASTER}, {role: CORE}]\n"
                        "bootstrap_actions:\n  - path: scripts/boot.sh\n  - path: ../shared/x.sh\n  - path: /opt/abs.sh\n")
    data = load_spec_file(path)
    assert [a["path"] for a in data["bootstrap_actions"]] == [
        str(specs / "scripts" / "boot.sh"), str(tmp_path / "shared" / "x.sh"), "/opt/abs.sh"]
    validate_cluster_spec(ClusterSpec.model_validate(data))  # absolute now; whether they exist is the upload's check


def test_relative_step_files_are_relative_to_the_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.chdir(tmp_path)
    path = write(specs, "name: d\nnode_groups: [{role: MASTER}, {role: CORE}]\nsteps:\n"
                        "  - {type: spark, args: [--files, 'data/lookup.txt#lookup.txt,hdfs:///x', jobs/job.py, in.txt]}\n"
                        "  - {type: SHELL, args: ['echo relative.sh']}\n"
                        "  - {type: NOPE, args: [x.py]}\n")
    steps = load_spec_file(path)["steps"]
    assert steps[0]["args"] == ["--files", f"{specs}/data/lookup.txt#lookup.txt,hdfs:///x", f"{specs}/jobs/job.py",
                                "in.txt"]  # the application's own arguments are its business
    assert steps[1]["args"] == ["echo relative.sh"]  # a command line, not a script
    assert steps[2]["args"] == ["x.py"]  # an unknown type is the server's to refuse


def test_no_file_means_default_groups() -> None:
    spec = merge_flags(None, SpecFlags())
    assert spec["name"] == "corral-cluster"
    assert spec["node_groups"] == DEFAULT_GROUPS
    ClusterSpec.model_validate(spec)


def test_core_and_task_flags() -> None:
    spec = merge_flags(None, SpecFlags(core_count=3, core_type="local.large", task_count=2, master_type="local.medium"))
    assert spec["node_groups"] == [
        {"role": "MASTER", "instance_type": "local.medium", "count": 1},
        {"role": "CORE", "instance_type": "local.large", "count": 3},
        {"role": "TASK", "count": 2},
    ]
    parsed = ClusterSpec.model_validate(spec)
    validate_cluster_spec(parsed)
    assert parsed.node_groups[2].instance_type == "local.medium"  # the model's default type


def test_a_type_alone_adds_one_node() -> None:
    spec = merge_flags({"name": "x", "node_groups": [{"role": "master"}, {"role": "core", "count": 2}]},
                       SpecFlags(task_type="local.small", core_type="local.large"))
    assert spec["node_groups"] == [{"role": "master"}, {"role": "core", "count": 2, "instance_type": "local.large"},
                                   {"role": "TASK", "count": 1, "instance_type": "local.small"}]


def test_flags_override_the_file() -> None:
    base = {"name": "from-file", "node_groups": [{"role": "MASTER"}, {"role": "CORE", "count": 5}], "release": "corral-1.0"}
    spec = merge_flags(base, SpecFlags(name="from-flag", core_count=1, services=["spark, hadoop", "hive"],
                                       auto_terminate=True, client_token="tok"))
    assert spec["name"] == "from-flag"
    assert spec["node_groups"][1]["count"] == 1
    assert spec["services"] == ["spark", "hadoop", "hive"]
    assert spec["auto_terminate"] is True and spec["client_token"] == "tok"


def test_properties_are_merged_by_classification() -> None:
    base = {"configurations": [{"classification": "spark-defaults", "properties": {"spark.a": "1"}}]}
    spec = merge_flags(base, SpecFlags(properties=[
        "spark-defaults:spark.b=2", "spark-env:SPARK_DAEMON_MEMORY=1g",
        "spark-defaults:spark.driver.extraJavaOptions=-Dx=y -Dz=w", "spark-defaults:spark.a=3"]))
    assert spec["configurations"] == [
        {"classification": "spark-defaults",
         "properties": {"spark.a": "3", "spark.b": "2", "spark.driver.extraJavaOptions": "-Dx=y -Dz=w"}},
        {"classification": "spark-env", "properties": {"SPARK_DAEMON_MEMORY": "1g"}},
    ]


@pytest.mark.parametrize("bad", ["spark.executor.memory=2g", "spark-defaults:spark.executor.memory",
                                 "spark-defaults:=2g", ""])
def test_malformed_property_is_rejected(bad: str) -> None:
    with pytest.raises(SpecFileError, match="CLASSIFICATION:KEY=VALUE"):
        merge_flags(None, SpecFlags(properties=[bad]))


def test_bootstrap_flags_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = merge_flags(None, SpecFlags(bootstrap=[Path("boot.sh")]))
    assert spec["bootstrap_actions"] == [{"path": str(tmp_path / "boot.sh")}]


def test_node_groups_must_be_a_list() -> None:
    with pytest.raises(SpecFileError, match="node_groups must be a list"):
        merge_flags({"node_groups": {"role": "MASTER"}}, SpecFlags())


def test_merge_does_not_modify_the_loaded_spec() -> None:
    base = {"name": "x", "node_groups": [{"role": "MASTER"}, {"role": "CORE", "count": 2}],
            "configurations": [{"classification": "spark-defaults", "properties": {}}]}
    before = copy.deepcopy(base)
    merge_flags(base, SpecFlags(core_count=4, properties=["spark-defaults:a=b"]))
    assert base == before


def test_configuration_values_keep_their_text(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text("name: x\nnode_groups: []\nconfigurations:\n"
                    "  - classification: spark-defaults\n"
                    "    properties: {a: 010, b: 1e3, c: 0x1F, d: 2024-03-10, e: true, f: 1_000, g: plain, h: 12}\n")
    props = load_spec_file(spec)["configurations"][0]["properties"]
    assert props == {"a": "010", "b": "1e3", "c": "0x1F", "d": "2024-03-10", "e": True, "f": "1_000", "g": "plain", "h": "12"}
