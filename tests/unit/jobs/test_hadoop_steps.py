"""HADOOP_JAR and STREAMING steps: argument checks, shipped files, and the commands."""

from __future__ import annotations

from pathlib import Path

from corral.jobs.hadoop_jar import HadoopJarStep
from corral.jobs.streaming import StreamingStep, rewrite
from corral.services.base import ClusterView

JAR = HadoopJarStep()
STREAMING = StreamingStep()
VIEW = ClusterView(cluster_id="c-x", release="corral-1.0", services=("hdfs", "yarn", "mapreduce"), nodes=())


def test_a_release_jar_is_used_on_the_node_by_name() -> None:
    files, errors = JAR.check(["hadoop-mapreduce-examples.jar", "teragen", "10", "/out"])
    assert (files, errors) == ([], [])
    argv = JAR.command(["hadoop-mapreduce-examples.jar", "teragen", "10", "/out"], VIEW).argv
    assert argv == ["hadoop", "jar", "${HADOOP_HOME}/hadoop-mapreduce-examples.jar", "teragen", "10", "/out"]


def test_a_local_jar_is_shipped(tmp_path: Path) -> None:
    jar = tmp_path / "app.jar"
    jar.write_bytes(b"PK")
    files, errors = JAR.check([str(jar), "com.example.Main", "x"])
    assert errors == [] and [(f.index, f.path) for f in files] == [(0, str(jar))]


def test_bad_jars_are_refused_naming_the_argument(tmp_path: Path) -> None:
    assert JAR.check([])[1][0].loc == ("args",)
    assert "must be a .jar" in JAR.check(["app.zip"])[1][0].msg
    unknown = JAR.check(["mystery.jar"])[1][0]
    assert unknown.loc == ("args", 0) and "hadoop-streaming.jar" in unknown.msg
    assert "not found" in JAR.check([str(tmp_path / "missing.jar")])[1][0].msg


def test_streaming_needs_input_output_and_mapper() -> None:
    _, errors = STREAMING.check(["-reducer", "cat"])
    assert sorted(e.msg for e in errors) == sorted(f"a STREAMING step needs {o}" for o in ("-input", "-output", "-mapper"))
    assert STREAMING.check(["-input", "/in", "-output"])[1][0].msg == "-output needs a value"


def test_streaming_ships_local_scripts_but_not_commands(tmp_path: Path) -> None:
    mapper = tmp_path / "mapper.py"
    mapper.write_text("print()")
    files, errors = STREAMING.check(["-mapper", str(mapper), "-reducer", "cat", "-input", "/in", "-output", "/out"])
    assert errors == [] and [(f.index, f.path) for f in files] == [(1, str(mapper))]
    missing = STREAMING.check(["-mapper", str(tmp_path / "nope.py"), "-input", "/i", "-output", "/o"])[1]
    assert missing[0].loc == ("args", 1) and "not found" in missing[0].msg


def test_rewrite_moves_scripts_to_files_and_runs_them_with_an_interpreter() -> None:
    args = ["-mapper", "/a/m.py", "-reducer", "/b/r.sh", "-combiner", "/c/bin", "-input", "/in", "-output", "/out",
            "-D", "mapreduce.job.reduces=2", "-files", "/d/lookup.txt"]
    assert rewrite(args, "/venv/python") == [
        "-D", "mapreduce.job.reduces=2",
        "-files", "/a/m.py,/b/r.sh,/c/bin,/d/lookup.txt",
        "-mapper", "/venv/python m.py", "-reducer", "bash r.sh", "-combiner", "./bin", "-input", "/in", "-output", "/out",
    ]
    assert rewrite(["-mapper", "cat", "-input", "/i", "-output", "/o"], "py") == ["-mapper", "cat", "-input", "/i", "-output", "/o"]
