"""SPARK steps: finding the application among spark-submit's options, and its local files."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.jobs.base import LocalFile
from corral.jobs.spark import SparkStep
from corral.services.base import ClusterView


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("app.py", "lib_a.py", "lib_b.zip", "data.txt", "dep.jar"):
        (tmp_path / name).write_text(name)
        out[name] = str(tmp_path / name)
    return out


def check(args: list[str]) -> tuple[list[LocalFile], list[tuple[tuple[str | int, ...], str]]]:
    found, errors = SparkStep().check(args)
    return found, [(e.loc, e.msg) for e in errors]


def test_application_found_after_options_with_values(files: dict[str, str]) -> None:
    args = ["--conf", "spark.sql.shuffle.partitions=4", "--py-files", f"{files['lib_a.py']},{files['lib_b.zip']}",
            "--name", "job", "--verbose", files["app.py"], "--input", "/does/not/matter", "10"]
    found, errors = check(args)
    assert errors == []
    assert found == [LocalFile(3, files["lib_a.py"]), LocalFile(3, files["lib_b.zip"]), LocalFile(7, files["app.py"])]


def test_application_arguments_are_not_checked(files: dict[str, str]) -> None:
    found, errors = check([files["app.py"], "/no/such/input.csv", "--py-files", "/no/such.py"])
    assert errors == []
    assert found == [LocalFile(0, files["app.py"])]


def test_option_equals_value_does_not_consume_the_next_argument(files: dict[str, str]) -> None:
    found, errors = check(["--conf=spark.x=1", "--executor-memory=1g", files["app.py"]])
    assert errors == []
    assert found == [LocalFile(2, files["app.py"])]


def test_files_and_jars_lists_are_shipped(files: dict[str, str]) -> None:
    found, errors = check(["--files", files["data.txt"], "--jars", files["dep.jar"], "--class", "org.Example",
                           files["dep.jar"]])
    assert errors == []
    assert found == [LocalFile(1, files["data.txt"]), LocalFile(3, files["dep.jar"]), LocalFile(6, files["dep.jar"])]


def test_missing_py_file_names_the_argument(files: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.py")
    found, errors = check(["--py-files", f"{files['lib_a.py']},{missing}", files["app.py"]])
    assert [loc for loc, _ in errors] == [("args", 1)]
    assert missing in errors[0][1]
    assert LocalFile(2, files["app.py"]) in found


def test_missing_application_file_names_its_argument(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.py")
    found, errors = check(["--conf", "a=b", missing, "x"])
    assert found == []
    assert [loc for loc, _ in errors] == [("args", 2)]
    assert "not found" in errors[0][1]


def test_relative_application_path_is_refused() -> None:
    _, errors = check(["app.py"])
    assert [loc for loc, _ in errors] == [("args", 0)]
    assert "absolute" in errors[0][1]


@pytest.mark.parametrize("args", [["--master", "local[2]"], ["--master=local[2]"]], ids=["separate", "equals"])
def test_master_is_refused(args: list[str], files: dict[str, str]) -> None:
    _, errors = check(["--name", "x", *args, files["app.py"]])
    assert ("args", 2) in [loc for loc, _ in errors]
    assert any("--master" in msg for _, msg in errors)


@pytest.mark.parametrize("args", [[], ["--conf", "a=b"], ["--verbose", "--py-files", "/x.py"]])
def test_no_application(args: list[str]) -> None:
    _, errors = check(args)
    assert ("args",) in [loc for loc, _ in errors]
    assert any("no application" in msg for _, msg in errors)


def test_option_without_its_value(files: dict[str, str]) -> None:
    _, errors = check(["--class"])
    assert [loc for loc, _ in errors][0] == ("args", 0)
    assert "needs a value" in errors[0][1]


@pytest.mark.parametrize("app", ["s3://bucket/app.py", "hdfs:///apps/app.jar", "local:/opt/app.jar",
                                 "https://example.com/app.py"])
def test_remote_applications_are_not_shipped(app: str) -> None:
    assert check([app]) == ([], [])


def test_file_url_application_is_shipped_by_path(files: dict[str, str]) -> None:
    found, errors = check(["file://" + files["app.py"]])
    assert errors == []
    assert found == [LocalFile(0, files["app.py"])]


def test_file_list_option_in_equals_form_is_checked(tmp_path: Path, files: dict[str, str]) -> None:
    missing = str(tmp_path / "missing.py")
    found, errors = check([f"--py-files={files['lib_a.py']},{missing}", files["app.py"]])
    assert ("args", 0) in [loc for loc, _ in errors]
    assert LocalFile(0, files["lib_a.py"]) in found


def test_command_is_spark_submit_in_client_mode(files: dict[str, str]) -> None:
    view = ClusterView(cluster_id="c-x", release="corral-1.0", services=("spark",), nodes=())
    cmd = SparkStep().command(["--conf", "a=b", files["app.py"], "1"], view)
    assert cmd.argv == ["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", "--conf", "a=b", files["app.py"], "1"]
