"""Every argument form that names a local file, for every step kind: which text names which
file (``check``), with which alias, and that rewriting it keeps everything around it.

``found(...)`` gives (argument index, local path, alias) per reference, and the arguments
with each reference's text bracketed: ``<...>`` is what the plan replaces with the shipped
copy's path on the node."""

from __future__ import annotations

import pytest

from corral.domain.states import StepType
from corral.jobs.files import Dialect, LocalFile, java_uri_parses, list_references, reference, rewrite
from corral.jobs.registry import STEP_KINDS

Ref = tuple[int, str, str | None]


def found(type_: str, args: list[str]) -> tuple[list[Ref], list[str]]:
    files, errors = STEP_KINDS[StepType(type_)].check(args)
    assert errors == [], errors
    return [(f.index, f.path, f.alias) for f in files], rewrite(args, files, lambda f: f"<{f.path}>")


CASES: list[tuple[str, str, list[str], list[Ref], list[str]]] = [
    # -- SPARK: spark-submit's options, SparkSubmitOptionParser's forms --------------------------
    ("issue input: --files and --archives with aliases", "SPARK",
     ["--files", "/local/lookup.txt#lookup.txt", "--archives", "/local/deps.zip#depsdir", "/local/app.py"],
     [(1, "/local/lookup.txt", "lookup.txt"), (3, "/local/deps.zip", "depsdir"), (4, "/local/app.py", None)],
     ["--files", "</local/lookup.txt>#lookup.txt", "--archives", "</local/deps.zip>#depsdir", "</local/app.py>"]),
    ("comma list with an alias, spaces Spark trims, remote neighbours", "SPARK",
     ["--files", "one.csv, /d/two.csv#second,hdfs:///x.csv,,s3a://b/y.csv", "local:/opt/app.jar"],
     [(1, "one.csv", None), (1, "/d/two.csv", "second")],
     ["--files", "<one.csv>, </d/two.csv>#second,hdfs:///x.csv,,s3a://b/y.csv", "local:/opt/app.jar"]),
    ("--jars and --py-files, relative and file: URIs", "SPARK",
     ["--jars", "file:///j/a.jar,lib/b.jar", "--py-files", "file:/p/dep.zip#dep", "--class", "x.Main", "app.jar"],
     [(1, "/j/a.jar", None), (1, "lib/b.jar", None), (3, "/p/dep.zip", "dep"), (6, "app.jar", None)],
     ["--jars", "file://</j/a.jar>,<lib/b.jar>", "--py-files", "file:</p/dep.zip>#dep",
      "--class", "x.Main", "<app.jar>"]),
    ("--name=value forms", "SPARK",
     ["--files=/a.txt#a,/b.txt", "--archives=/e.tgz#env", "--py-files=/l.py", "--jars=/j.jar", "/app.py"],
     [(0, "/a.txt", "a"), (0, "/b.txt", None), (1, "/e.tgz", "env"), (2, "/l.py", None), (3, "/j.jar", None),
      (4, "/app.py", None)],
     ["--files=</a.txt>#a,</b.txt>", "--archives=</e.tgz>#env", "--py-files=</l.py>", "--jars=</j.jar>", "</app.py>"]),
    ("properties files and the keytab are plain paths", "SPARK",
     ["--properties-file", "/c/my#1.conf", "--extra-properties-file=/c/x.conf", "--keytab", "/k/u.keytab",
      "--principal", "u@R", "/app.py"],
     [(1, "/c/my#1.conf", None), (2, "/c/x.conf", None), (4, "/k/u.keytab", None), (7, "/app.py", None)],
     ["--properties-file", "</c/my#1.conf>", "--extra-properties-file=</c/x.conf>", "--keytab", "</k/u.keytab>",
      "--principal", "u@R", "</app.py>"]),
    ("file lists and files given as --conf properties", "SPARK",
     ["--conf", "spark.yarn.dist.files=/f/a.txt#a", "-c", "spark.yarn.dist.archives=/f/env.zip#env",
      "--conf=spark.yarn.dist.jars=/f/x.jar", "--conf", "spark.yarn.dist.pyFiles=/f/p.py",
      "--conf", "spark.files=/f/b.txt", "--conf", "spark.jars=/f/y.jar", "--conf", "spark.submit.pyFiles=/f/q.zip",
      "--conf", "spark.archives=/f/z.tgz#z", "--conf", "spark.jars.ivySettings=/f/ivy.xml",
      "--conf", "spark.kerberos.keytab=/f/k.keytab", "--conf", "spark.executor.memory=/not/a/file", "/app.py"],
     [(1, "/f/a.txt", "a"), (3, "/f/env.zip", "env"), (4, "/f/x.jar", None), (6, "/f/p.py", None),
      (8, "/f/b.txt", None), (10, "/f/y.jar", None), (12, "/f/q.zip", None), (14, "/f/z.tgz", "z"),
      (16, "/f/ivy.xml", None), (18, "/f/k.keytab", None), (21, "/app.py", None)],
     ["--conf", "spark.yarn.dist.files=</f/a.txt>#a", "-c", "spark.yarn.dist.archives=</f/env.zip>#env",
      "--conf=spark.yarn.dist.jars=</f/x.jar>", "--conf", "spark.yarn.dist.pyFiles=</f/p.py>",
      "--conf", "spark.files=</f/b.txt>", "--conf", "spark.jars=</f/y.jar>", "--conf", "spark.submit.pyFiles=</f/q.zip>",
      "--conf", "spark.archives=</f/z.tgz>#z", "--conf", "spark.jars.ivySettings=</f/ivy.xml>",
      "--conf", "spark.kerberos.keytab=</f/k.keytab>", "--conf", "spark.executor.memory=/not/a/file", "</app.py>"]),
    ("node paths and remote URIs are left alone; application arguments are the application's", "SPARK",
     ["--driver-class-path", "/opt/x.jar", "--driver-library-path", "/opt/lib", "--jars", "local:/opt/y.jar",
      "--files", "http://h/a,https://h/b,s3://b/c,gs://b/d,viewfs:///e", "--verbose", "hdfs:///apps/job.py",
      "--input", "/local/data.csv"],
     [], ["--driver-class-path", "/opt/x.jar", "--driver-library-path", "/opt/lib", "--jars", "local:/opt/y.jar",
          "--files", "http://h/a,https://h/b,s3://b/c,gs://b/d,viewfs:///e", "--verbose", "hdfs:///apps/job.py",
          "--input", "/local/data.csv"]),
    ("a '#' without a URI is a file name; an escape with an alias is decoded", "SPARK",
     ["--files", "/d/a b#c.txt,/d/x%20y.txt#xy,/d/p%41.txt", "spark-internal"],
     [(1, "/d/a b#c.txt", None), (1, "/d/x y.txt", "xy"), (1, "/d/p%41.txt", None)],
     ["--files", "</d/a b#c.txt>,</d/x y.txt>#xy,</d/p%41.txt>", "spark-internal"]),
    # -- HADOOP_JAR: the jar, then generic options after the main class or program name ---------
    ("jar, then -files/-archives/-libjars after the main class", "HADOOP_JAR",
     ["/j/app.jar", "com.x.Main", "-files", "/l/a.txt#a,b.txt", "-archives=/l/d.zip#d", "--libjars", "/l/x.jar",
      "-D", "k=v", "-Dk2=v2", "-conf", "/l/job.xml", "-tokenCacheFile", "/l/t.json", "in", "-files", "/not/generic"],
     [(0, "/j/app.jar", None), (3, "/l/a.txt", "a"), (3, "b.txt", None), (4, "/l/d.zip", "d"), (6, "/l/x.jar", None),
      (11, "/l/job.xml", None), (13, "/l/t.json", None)],
     ["</j/app.jar>", "com.x.Main", "-files", "</l/a.txt>#a,<b.txt>", "-archives=</l/d.zip>#d", "--libjars",
      "</l/x.jar>", "-D", "k=v", "-Dk2=v2", "-conf", "</l/job.xml>", "-tokenCacheFile", "</l/t.json>", "in", "-files",
      "/not/generic"]),
    ("a release jar's driver program takes generic options after its name", "HADOOP_JAR",
     ["hadoop-mapreduce-examples.jar", "wordcount", "-files", "/l/stop.txt#stop", "/in", "/out"],
     [(3, "/l/stop.txt", "stop")], ["hadoop-mapreduce-examples.jar", "wordcount", "-files", "</l/stop.txt>#stop", "/in",
                                   "/out"]),
    ("a manifest main class: generic options right after the jar; Hadoop decodes URIs", "HADOOP_JAR",
     ["/j/app.jar", "-files", "/l/a%23b.txt#ab,hdfs://nn:8020/x,file:///l/c.txt", "--", "-files", "/x"],
     [(0, "/j/app.jar", None), (2, "/l/a#b.txt", "ab"), (2, "/l/c.txt", None)],
     ["</j/app.jar>", "-files", "</l/a#b.txt>#ab,hdfs://nn:8020/x,file://</l/c.txt>", "--", "-files", "/x"]),
    # -- STREAMING: scripts, -file, and generic options anywhere (Corral moves them) -------------
    ("scripts, -file, -files/-archives/-libjars with aliases", "STREAMING",
     ["-D", "mapreduce.job.reduces=2", "-input", "/in", "-output", "/out", "-mapper", "/s/map.py", "-reducer", "cat",
      "-combiner", "/s/comb.sh", "-file", "/s/dict#1.txt", "-files", "/s/stop.txt#stop,hdfs:///x",
      "-archives", "/s/env.tgz#env", "-libjars", "/s/udf.jar", "--mapdebug", "/s/debug.sh", "-conf", "/s/c.xml"],
     [(7, "/s/map.py", None), (11, "/s/comb.sh", None), (13, "/s/dict#1.txt", None), (15, "/s/stop.txt", "stop"),
      (17, "/s/env.tgz", "env"), (19, "/s/udf.jar", None), (21, "/s/debug.sh", None), (23, "/s/c.xml", None)],
     ["-D", "mapreduce.job.reduces=2", "-input", "/in", "-output", "/out", "-mapper", "</s/map.py>", "-reducer", "cat",
      "-combiner", "</s/comb.sh>", "-file", "</s/dict#1.txt>", "-files", "</s/stop.txt>#stop,hdfs:///x",
      "-archives", "</s/env.tgz>#env", "-libjars", "</s/udf.jar>", "--mapdebug", "</s/debug.sh>", "-conf", "</s/c.xml>"]),
    ("a command line or a relative program is not a file; -files' relative entries are", "STREAMING",
     ["-input", "/in", "-output", "/out", "-mapper", "python3 /s/m.py", "-reducer", "r.py", "-files=r.py"],
     [(8, "r.py", None)],
     ["-input", "/in", "-output", "/out", "-mapper", "python3 /s/m.py", "-reducer", "r.py", "-files=<r.py>"]),
    # -- SQL, SHELL ----------------------------------------------------------------------------
    ("SPARK_SQL: a local or file: script; a remote one is read where it is", "SPARK_SQL",
     ["file:///q/report#1.sql"], [(0, "/q/report#1.sql", None)], ["file://</q/report#1.sql>"]),
    ("SPARK_SQL: hdfs script", "SPARK_SQL", ["hdfs:///q/report.sql"], [], ["hdfs:///q/report.sql"]),
    ("HIVE: a local script, any character part of its name", "HIVE", ["/q/a#b%20.sql"], [(0, "/q/a#b%20.sql", None)],
     ["</q/a#b%20.sql>"]),
    ("SHELL: a script and its arguments", "SHELL", ["/s/run.sh", "/s/other.txt"], [(0, "/s/run.sh", None)],
     ["</s/run.sh>", "/s/other.txt"]),
    ("SHELL: a relative script", "SHELL", ["tools/job.py", "x"], [(0, "tools/job.py", None)], ["<tools/job.py>", "x"]),
]


@pytest.mark.parametrize(("title", "type_", "args", "refs", "marked"), CASES, ids=[c[0] for c in CASES])
def test_every_form_of_local_file_argument(title: str, type_: str, args: list[str], refs: list[Ref],
                                           marked: list[str]) -> None:
    got_refs, got_marked = found(type_, args)
    assert got_refs == refs
    assert got_marked == marked


def test_transfer_steps_name_no_local_files() -> None:
    files, _ = STEP_KINDS[StepType.DATA_IMPORT].check(["--from", "s3a://b/x", "--to", "/x"])
    assert files == []


@pytest.mark.parametrize(("type_", "args", "loc", "message"), [
    ("SPARK", ["--jars", "/libs/*.jar", "/app.py"], ("args", 1), "wildcard"),
    ("SPARK", ["--conf", "spark.files=/d/?.txt", "/app.py"], ("args", 1), "wildcard"),
    ("HADOOP_JAR", ["/j.jar", "Main", "-libjars", "/libs/*"], ("args", 3), "wildcard"),
    ("HADOOP_JAR", ["/j.jar", "Main", "-files"], ("args", 2), "-files needs a value"),
    ("HADOOP_JAR", ["hdfs:///apps/x.jar"], ("args", 0), "hadoop jar runs a local jar"),
    ("STREAMING", ["-input", "/i", "-output", "/o", "-mapper", "cat", "-archives"], ("args", 6), "needs a value"),
    ("SPARK", ["--bogus", "/app.py"], ("args", 0), "unknown spark-submit option '--bogus'"),
])
def test_malformed_file_arguments_name_the_argument(type_: str, args: list[str], loc: tuple[str | int, ...],
                                                    message: str) -> None:
    _, errors = STEP_KINDS[StepType(type_)].check(args)
    assert any(e.loc == loc and message in e.msg for e in errors), errors


def test_checking_reads_no_disk() -> None:
    """The files are the client's: a path that exists nowhere is found all the same."""
    refs, _ = found("SPARK", ["--files", "/nowhere/at/all.txt#x", "/nowhere/app.py"])
    assert refs == [(1, "/nowhere/at/all.txt", "x"), (2, "/nowhere/app.py", None)]


@pytest.mark.parametrize(("text", "ok"), [("/a/b.txt", True), ("/a b", False), ("/a%2", False), ("/a%20#x", True),
                                          ("/a#b#c", False), ("/ü.txt", True), ("/a{b}", False), ("/a|b", False)])
def test_java_uri_syntax(text: str, ok: bool) -> None:
    assert java_uri_parses(text) is ok


def test_dialects_differ_where_their_consumers_do() -> None:
    text = "/d/a%23b.txt#al"
    assert reference(0, text, 0, "x", Dialect.PATH) == LocalFile(0, text, "x", 0, len(text))
    assert reference(0, text, 0, "x", Dialect.HADOOP_PATH) == LocalFile(0, text, "x", 0, len(text))
    uri = LocalFile(0, "/d/a#b.txt", "x", 0, 12, uri=True, alias="al")
    assert reference(0, text, 0, "x", Dialect.HADOOP_URI) == uri
    assert reference(0, text, 0, "x", Dialect.SPARK_URI) == uri
    # Without an alias, Spark reads a scheme-less path literally; Hadoop still as a URI.
    assert reference(0, "/d/a%23b", 0, "x", Dialect.SPARK_URI).path == "/d/a%23b"  # type: ignore[union-attr]
    assert reference(0, "/d/a%23b", 0, "x", Dialect.HADOOP_URI).path == "/d/a#b"  # type: ignore[union-attr]
    assert reference(0, "file://localhost/d/x", 0, "x", Dialect.SPARK_URI).path == "/d/x"  # type: ignore[union-attr]
    assert reference(0, "local:/d/x", 0, "x", Dialect.SPARK_URI) is None
    assert reference(0, "s3a://b/x", 0, "x", Dialect.HADOOP_PATH) is None


def test_list_spans_point_into_the_whole_argument() -> None:
    arg = "--files= a.txt ,b.txt#bee"
    refs = list_references(0, arg[8:], 8, "e", Dialect.SPARK_URI)
    assert [arg[r.start:r.end] for r in refs] == ["a.txt", "b.txt"]
    assert rewrite([arg], refs, lambda r: r.path.upper()) == ["--files= A.TXT ,B.TXT#bee"]
