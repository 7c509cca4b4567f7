"""SPARK steps: finding the application among spark-submit's options, and refusing what
Corral sets itself. (Which arguments name local files: test_file_args.py.)"""

from __future__ import annotations

import pytest

from corral.jobs.spark import SparkStep
from corral.services.base import ClusterView


def check(args: list[str]) -> tuple[list[tuple[int, str]], list[tuple[tuple[str | int, ...], str]]]:
    found, errors = SparkStep().check(args)
    return [(f.index, f.path) for f in found], [(e.loc, e.msg) for e in errors]


def test_application_found_after_options_with_values() -> None:
    args = ["--conf", "spark.sql.shuffle.partitions=4", "--py-files", "/c/lib_a.py,/c/lib_b.zip",
            "--name", "job", "--verbose", "/c/app.py", "--input", "/does/not/matter", "10"]
    assert check(args) == ([(3, "/c/lib_a.py"), (3, "/c/lib_b.zip"), (7, "/c/app.py")], [])


def test_application_arguments_are_not_read() -> None:
    assert check(["/c/app.py", "/no/such/input.csv", "--py-files", "/no/such.py"]) == ([(0, "/c/app.py")], [])


def test_option_equals_value_does_not_consume_the_next_argument() -> None:
    assert check(["--conf=spark.x=1", "--executor-memory=1g", "/c/app.py"]) == ([(2, "/c/app.py")], [])


def test_an_empty_equals_value_is_not_an_option_value() -> None:
    # SparkSubmitOptionParser's "--name=value" needs a value: "--files=" is an unknown option.
    _, errors = check(["--files=", "/c/app.py"])
    assert [loc for loc, _ in errors] == [("args", 0)]


@pytest.mark.parametrize("args", [["--master", "local[2]"], ["--master=local[2]"]], ids=["separate", "equals"])
def test_master_is_refused(args: list[str]) -> None:
    _, errors = check(["--name", "x", *args, "/c/app.py"])
    assert ("args", 2) in [loc for loc, _ in errors]
    assert any("--master" in msg for _, msg in errors)


@pytest.mark.parametrize("args", [[], ["--conf", "a=b"], ["--verbose", "--py-files", "/x.py"]])
def test_no_application(args: list[str]) -> None:
    _, errors = check(args)
    assert ("args",) in [loc for loc, _ in errors]
    assert any("no application" in msg for _, msg in errors)


def test_option_without_its_value() -> None:
    _, errors = check(["--class"])
    assert [loc for loc, _ in errors][0] == ("args", 0)
    assert "needs a value" in errors[0][1]


@pytest.mark.parametrize("app", ["s3://bucket/app.py", "hdfs:///apps/app.jar", "local:/opt/app.jar",
                                 "https://example.com/app.py", "spark-internal"])
def test_remote_applications_are_not_shipped(app: str) -> None:
    assert check([app]) == ([], [])


def test_file_url_application_is_shipped_by_path() -> None:
    assert check(["file:///c/app.py"]) == ([(0, "/c/app.py")], [])


def test_command_is_spark_submit_in_client_mode() -> None:
    view = ClusterView(cluster_id="c-x", release="corral-1.0", services=("spark",), nodes=())
    cmd = SparkStep().command(["--conf", "a=b", "/c/app.py", "1"], view)
    assert cmd.argv == ["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", "--conf", "a=b", "/c/app.py", "1"]
