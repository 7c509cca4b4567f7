"""Corral's reading of file arguments against the consumers' own Java parsers: Spark 4.3's
SparkSubmitOptionParser and Utils.resolveURI, and Hadoop 3.5's GenericOptionsParser, run
on the same argument vectors. Needs Java and the host's runtimes (``make setup``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from corral.jobs.files import leading_generic_options
from corral.jobs.spark import CONF_FILE_LISTS, FILE_LIST_OPTIONS, SparkStep
from corral.runtime import hadoop

pytestmark = pytest.mark.integration

SPARK_PROBE = r"""
package org.apache.spark.launcher;
import java.nio.file.*;
import java.util.*;
public class CorralProbe extends SparkSubmitOptionParser {
  private final List<String> out = new ArrayList<>();
  public static void main(String[] a) throws Exception {
    for (String line : Files.readAllLines(Paths.get(a[0]))) {
      CorralProbe p = new CorralProbe();
      try { p.parse(Arrays.asList(line.split("\t", -1))); } catch (IllegalArgumentException e) { p.out.add("E"); }
      for (String s : p.out) System.out.println(s);
      System.out.println(".");
    }
  }
  private void uris(String kind, String list) {
    for (String item : list.split(",")) {
      if (item.trim().isEmpty()) continue;
      java.net.URI u = org.apache.spark.util.Utils.resolveURI(item.trim());
      out.add("U\t" + kind + "\t" + u.getScheme() + "\t" + u.getPath() + "\t" + u.getFragment());
    }
  }
  @Override protected boolean handle(String opt, String value) {
    out.add("O\t" + opt);
    if (value != null && opt.equals("--conf") && value.contains("=")) uris("conf:" + value.split("=", 2)[0], value.split("=", 2)[1]);
    else if (value != null) uris(opt, value);
    return true;
  }
  @Override protected boolean handleUnknown(String opt) {
    if (opt.startsWith("-")) { out.add("E"); return false; }
    uris("app", opt);
    return false;
  }
  @Override protected void handleExtraArgs(List<String> extra) {}
}
"""

HADOOP_PROBE = r"""
import java.nio.file.*;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.util.GenericOptionsParser;
public class CorralGenericProbe {
  public static void main(String[] a) throws Exception {
    for (String line : Files.readAllLines(Paths.get(a[0]))) {
      Configuration conf = new Configuration(false);
      try {
        new GenericOptionsParser(conf, line.split("\t", -1));
        for (String key : new String[] {"tmpfiles", "tmparchives", "tmpjars"})
          if (conf.get(key) != null) for (String f : conf.get(key).split(",")) System.out.println(key + "\t" + f);
      } catch (Exception e) { System.out.println("E\t" + e); }
      System.out.println(".");
    }
  }
}
"""


def _java(tmp_path: Path, source: str, name: str, classpath: str, vectors: list[list[str]]) -> list[list[str]]:
    javac = shutil.which("javac")
    assert javac, "a JDK is needed (make setup)"
    path = tmp_path / "src" / f"{name}.java"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    classes = tmp_path / "classes"
    subprocess.run([javac, "-nowarn", "-d", str(classes), "-cp", classpath, str(path)], check=True, capture_output=True)
    lines = tmp_path / f"{name}.txt"
    lines.write_text("\n".join("\t".join(v) for v in vectors) + "\n")
    main = ("org.apache.spark.launcher." if "package" in source else "") + name
    result = subprocess.run(["java", "-cp", f"{classes}:{classpath}", main, str(lines)], capture_output=True, text=True,
                            timeout=300, check=True)
    blocks, current = [], []
    for line in result.stdout.splitlines():
        if line == ".":
            blocks.append(current)
            current = []
        elif "\t" in line or line == "E":
            current.append(line)
    assert len(blocks) == len(vectors), result.stderr[-2000:]
    return [[line for line in block] for block in blocks]


SPARK_VECTORS = [
    ["--files", "/l/lookup.txt#lookup.txt", "--archives", "/l/deps.zip#depsdir", "/l/app.py"],
    ["--files", " one.csv , /d/two.csv#second,hdfs:///x.csv,,s3a://b/y.csv", "-v", "--py-files=file:/p/dep.zip#dep",
     "local:/opt/app.jar"],
    ["--jars=file:///j/a.jar,lib/b.jar", "--class", "x.Main", "-c", "spark.yarn.dist.files=/f/a.txt#a,/f/b%20c.txt",
     "--conf=spark.archives=/f/z.tgz#z", "--conf", "spark.executor.memory=2g", "app.jar", "--files", "/not/an/option"],
    ["--files", "/d/a b#c.txt,/d/x%20y.txt#xy,/d/p%41.txt,/d/ü.txt", "--load-spark-defaults", "--verbose", "/app.py"],
    ["--conf", "spark.submit.pyFiles=/q/a.zip", "--conf", "spark.jars=http://h/x.jar,/q/y.jar", "--files=", "/app.py"],
]


def test_spark_submit_options_and_uris_read_as_spark_reads_them(tmp_path: Path) -> None:
    import pyspark  # noqa: PLC0415

    classpath = f"{Path(pyspark.__file__).parent}/jars/*"
    blocks = _java(tmp_path, SPARK_PROBE, "CorralProbe", classpath, SPARK_VECTORS)
    for args, block in zip(SPARK_VECTORS, blocks):
        expected = []
        for line in block:
            if line == "E":
                break
            if line.startswith("U\t"):
                _, kind, scheme, path, fragment = line.split("\t")
                ships = kind in FILE_LIST_OPTIONS or kind == "app" or kind.removeprefix("conf:") in CONF_FILE_LISTS
                if ships and scheme == "file":
                    expected.append((path, None if fragment == "null" else fragment))
        files, errors = SparkStep().check(args)
        # Spark makes a relative path absolute against its working directory; Corral's CLI does that.
        got = [(f.path if f.path.startswith("/") else str(Path.cwd() / f.path), f.alias) for f in files]
        if "E" in block:  # spark-submit refuses the arguments: so does Corral, having read the same before
            assert errors and got[:len(expected)] == expected, (args, block)
        else:
            assert got == expected and errors == [], (args, block, errors)


def test_generic_options_read_as_generic_options_parser_reads_them(tmp_path: Path) -> None:
    d = tmp_path / "files"
    d.mkdir()
    for name in ("a.txt", "a#b.txt", "c.txt", "d.zip", "x.jar", "p%41.txt"):
        (d / name).write_text(name)
    vectors = [
        ["-files", f"{d}/a.txt#al,{d}/c.txt", "-archives", f"{d}/d.zip#env", "-libjars", f"{d}/x.jar", "in", "out"],
        ["--files", f"{d}/a%23b.txt#ab", "-Dk=v", "-D", "k2=v2", f"--archives={d}/d.zip", "rest"],
        ["-files", f"file://{d}/c.txt,file:{d}/p%2541.txt", "program", "-files", f"{d}/a.txt"],
        ["-files", f"{d}/a.txt", "--", "-archives", f"{d}/d.zip"],
    ]
    home = hadoop.ensure_hadoop()
    blocks = _java(tmp_path, HADOOP_PROBE, "CorralGenericProbe", f"{home}/lib/*", vectors)
    for args, block in zip(vectors, blocks):
        assert not any(line.startswith("E") for line in block), block
        expected = sorted(tuple(line.split("\t")) for line in block)
        files, errors = leading_generic_options(args, 0)
        names = {"-files entry": "tmpfiles", "-archives entry": "tmparchives", "-libjars entry": "tmpjars"}
        got = sorted((names[f.what], f"file:{f.path}" + (f"#{f.alias}" if f.alias else "")) for f in files)
        assert (got, errors) == (expected, []), (args, block)
