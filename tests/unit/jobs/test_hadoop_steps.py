"""HADOOP_JAR and STREAMING steps: argument checks, shipped files, and the commands."""

from __future__ import annotations

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


def test_a_local_jar_is_shipped() -> None:
    files, errors = JAR.check(["/c/app.jar", "com.example.Main", "x"])
    assert errors == [] and [(f.index, f.path) for f in files] == [(0, "/c/app.jar")]


def test_bad_jars_are_refused_naming_the_argument() -> None:
    assert JAR.check([])[1][0].loc == ("args",)
    assert "must be a .jar" in JAR.check(["app.zip"])[1][0].msg
    # A bare name that is no release jar is a relative local path: the CLI resolves it,
    # and every message about it lists the release's jars.
    (unknown,), errors = JAR.check(["mystery.jar"])
    assert errors == [] and unknown.path == "mystery.jar" and "hadoop-streaming.jar" in unknown.hint


def test_streaming_needs_input_output_and_mapper() -> None:
    _, errors = STREAMING.check(["-reducer", "cat"])
    assert sorted(e.msg for e in errors) == sorted(f"a STREAMING step needs {o}" for o in ("-input", "-output", "-mapper"))
    assert STREAMING.check(["-input", "/in", "-output"])[1][0].msg == "-output needs a value"


def test_streaming_ships_local_scripts_but_not_commands() -> None:
    files, errors = STREAMING.check(["-mapper", "/c/mapper.py", "-reducer", "cat", "-input", "/in", "-output", "/out"])
    assert errors == [] and [(f.index, f.path, f.what) for f in files] == [(1, "/c/mapper.py", "-mapper script")]


def test_rewrite_merges_generic_options_and_puts_them_first() -> None:
    """GenericOptionsParser reads generic options only before the streaming ones, and only
    the first -files (-archives, -libjars): Corral merges and moves them."""
    args = ["-input", "/in", "-files", "/n/a.txt#a", "-output", "/out", "--archives=/n/env.tgz#env",
            "-mapper", "/n/m.py", "-files=/n/b.txt,/n/a.txt#a", "-libjars", "/n/u.jar", "-Dk=v", "-conf", "/n/c.xml",
            "-file", "/n/dict.txt"]
    assert rewrite(args, "py") == [
        "-D", "k=v", "-conf", "/n/c.xml",
        "-files", "/n/a.txt#a,/n/m.py,/n/b.txt", "-libjars", "/n/u.jar", "-archives", "/n/env.tgz#env",
        "-input", "/in", "-output", "/out", "-mapper", "py m.py", "-file", "/n/dict.txt"]


def test_rewrite_moves_scripts_to_files_and_runs_them_with_an_interpreter() -> None:
    args = ["-mapper", "/a/m.py", "-reducer", "/b/r.sh", "-combiner", "/c/bin", "-input", "/in", "-output", "/out",
            "-D", "mapreduce.job.reduces=2", "-files", "/d/lookup.txt"]
    assert rewrite(args, "/venv/python") == [
        "-D", "mapreduce.job.reduces=2",
        "-files", "/a/m.py,/b/r.sh,/c/bin,/d/lookup.txt",
        "-mapper", "/venv/python m.py", "-reducer", "bash r.sh", "-combiner", "./bin", "-input", "/in", "-output", "/out",
    ]
    assert rewrite(["-mapper", "cat", "-input", "/i", "-output", "/o"], "py") == ["-mapper", "cat", "-input", "/i", "-output", "/o"]
