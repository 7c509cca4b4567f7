"""corral.formats: any value a format accepts reaches its reader exactly, read back by the
reader itself: ``java.util.Properties.load`` through a UTF-8 Reader and Spark's own
``Utils.getPropertiesFromFile`` for spark-defaults.conf, Hadoop's ``Configuration`` (the
runtime's, as daemons and ``hdfs getconf`` read it, and Spark's client, as drivers and the
SQL endpoint read hive-site.xml), bash for the env files. Each example goes through the
whole way a value travels: rendered, secrets filled in (``with_secrets``), runtime paths
filled in by the agent (``substitute``), read. Plus validation: what is refused, and why
(the readers show that a refused value would change)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pyspark
from corral import formats
from corral.agent.protocol import FileSpec, NodePlan, protect_runtime_placeholders
from corral.agent.runtime import substitute
from corral.control.plans import with_secrets
from corral.domain import secrets
from corral.runtime.hadoop import ensure_hadoop

SOURCE = Path(__file__).with_name("ReadBack.java")
SPARK_JARS = Path(pyspark.__file__).parent / "jars"
# Runtime paths as the agent fills them in, with what each format must escape.
RUNTIME = {"SPARK_HOME": "/opt/spark home/\\é", "PYTHON": " /py=:#!", "JAVA_HOME": '/j "$HOME" `id` <&>'}
EXAMPLES = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class JavaReader:
    """A long-running JVM reading files on request (``ReadBack.java``): one JVM start for
    every example of a test module, not one per example."""

    def __init__(self, classes: Path, classpath: str):
        self.proc = subprocess.Popen(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{classes}:{classpath}",
                                      "ReadBack"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, encoding="ascii")
        self.lock = threading.Lock()

    def read(self, mode: str, path: Path) -> dict[str, str]:
        assert self.proc.stdin and self.proc.stdout
        with self.lock:
            self.proc.stdin.write(f"{mode} {path}\n")
            self.proc.stdin.flush()
            found: dict[str, str] = {}
            while (line := self.proc.stdout.readline().rstrip("\n")) != "END":
                assert line, "the reader JVM died"
                assert not line.startswith("ERROR "), _unhex(line[6:])
                key, value = line.split(" ")
                found[_unhex(key)] = _unhex(value)
            return found

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(30)


def _unhex(text: str) -> str:
    return bytes.fromhex(text).decode("utf-16-be", errors="surrogatepass")


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, JavaReader]]:
    """"spark": Spark's class path (its Utils, its Hadoop client); "hadoop": the release's
    Hadoop runtime, as the daemons have it."""
    javac = shutil.which("javac")
    assert javac, "the JDK's javac is needed (`make setup` installs openjdk-17-jdk-headless)"
    classes = tmp_path_factory.mktemp("readback")
    compile_path = ":".join(str(next(SPARK_JARS.glob(pattern))) for pattern in
                            ("spark-core_*.jar", "scala-library-*.jar", "hadoop-client-api-*.jar"))
    subprocess.run([javac, "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-d", str(classes), "-cp", compile_path,
                    str(SOURCE)], check=True, timeout=120)
    started = {"spark": JavaReader(classes, f"{SPARK_JARS}/*"),
               "hadoop": JavaReader(classes, f"{ensure_hadoop()}/lib/*")}
    yield started
    for reader in started.values():
        reader.close()


# -- what examples are made of ----------------------------------------------------------------

# Characters each format treats specially, and a few the readers might mangle.
SPECIAL = list("\\ \t\n\r\f\v=:#!${}\"'`&<>;|()*?~\0\x01\x1b\x7f\x85\xa0\u2028\u2029\ufeff\ufffe\uffffé€😀")
TOKENS = ["${SPARK_HOME}", "$${SPARK_HOME}", "${PYTHON}", "${JAVA_HOME}", "${HADOOP_HOME}", "${user.name}", "{{secret:x}}",
          "${", "$$", "]]>", "&#13;", "\\u0041", "\\"]
CHUNKS = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=6)
TEXT = st.lists(st.one_of(CHUNKS, st.sampled_from(TOKENS)), max_size=6).map("".join)


def _plain(text: str) -> str:
    """What the agent's substitution makes of ``text``, before any file escaping."""
    return substitute(text, RUNTIME)


def _pipeline(spec: FileSpec, secret: str) -> str:
    """``spec`` as its reader finds it on the node: the secret, then the runtime paths filled in."""
    plan = NodePlan(version=1, cluster_id="c", node_id="n", role="MASTER", address="127.0.0.2",
                    runtime={"release": "r", "spark_version": "4.3.0", "java_major": 17}, files=[spec])
    filled = with_secrets(plan, {"s": secret}).files[0]
    return substitute(filled.content, RUNTIME, formats.LITERAL[filled.format])


def _write(tmp: Path, name: str, content: str) -> Path:
    path = tmp / name
    path.write_bytes(content.encode("utf-8"))
    return path


def _spark_trim(value: str) -> str:
    """Spark's ``Utils.trimExceptCRLF``: characters up to U+0020 off both ends, but CR and LF."""
    kept = [i for i, c in enumerate(value) if c > " " or c in "\r\n"]
    return value[kept[0]:kept[-1] + 1] if kept else ""


# -- Java properties: spark-defaults.conf -----------------------------------------------------

@EXAMPLES
@given(props=st.dictionaries(TEXT, TEXT, min_size=1, max_size=6), secret=TEXT)
def test_properties_read_back_exactly_by_properties_load_and_by_spark(readers: dict[str, JavaReader], tmp_path_factory:
                                                                        pytest.TempPathFactory, props: dict[str, str],
                                                                        secret: str) -> None:
    props = {"spark." + k: v for k, v in props.items() if not formats.SPARK_PROPERTIES.problems("spark." + k, v)}
    assume(formats.text_problem(secret) is None)
    assume("spark.secret" not in props)
    expected = {k: _plain(v) for k, v in props.items()} | {"spark.secret": secret}  # names are never substituted
    spec = FileSpec(path="/n/spark-defaults.conf", format="properties",
                    content=formats.java_properties({**props, "spark.secret": secrets.placeholder("s")}, "test"))
    path = _write(tmp_path_factory.mktemp("p"), "spark-defaults.conf", _pipeline(spec, secret))
    assert readers["spark"].read("properties", path) == expected
    assert readers["spark"].read("spark", path) == {k: _spark_trim(v) for k, v in expected.items()}


@EXAMPLES
@given(key=TEXT, value=TEXT)
def test_any_properties_key_survives_the_line_start_separators_and_comment_marks(readers: dict[str, JavaReader],
                                                                                   tmp_path_factory: pytest.TempPathFactory,
                                                                                   key: str, value: str) -> None:
    assume(key and formats.text_problem(key + value) is None)
    content = formats.java_properties({key: value}, "any key, as the format allows (spark-defaults wants spark.)")
    path = _write(tmp_path_factory.mktemp("k"), "any.conf", substitute(content, RUNTIME, formats.LITERAL["properties"]))
    assert readers["spark"].read("properties", path) == {key: _plain(value)}


def test_the_issues_windows_path_reaches_spark_exactly(readers: dict[str, JavaReader], tmp_path: Path) -> None:
    value = "C:\\temp\\new #x"
    content = formats.java_properties({"spark.corral.test": value}, "issue 10")
    assert "spark.corral.test C:\\\\temp\\\\new #x" in content.splitlines()
    path = _write(tmp_path, "spark-defaults.conf", content)
    assert readers["spark"].read("spark", path) == {"spark.corral.test": value}
    raw = _write(tmp_path, "raw.conf", f"spark.corral.test {value}\n")  # what Corral wrote before
    assert readers["spark"].read("spark", raw) == {"spark.corral.test": "C:\temp\new #x"}


# -- Hadoop XML: *-site.xml, capacity-scheduler.xml, hive-site.xml ---------------------------------

@EXAMPLES
@given(props=st.dictionaries(TEXT, TEXT, min_size=1, max_size=6), secret=TEXT, final=st.booleans())
def test_site_xml_reads_back_exactly_in_hadoops_and_sparks_configuration(readers: dict[str, JavaReader],
                                                                         tmp_path_factory: pytest.TempPathFactory,
                                                                         props: dict[str, str], secret: str,
                                                                         final: bool) -> None:
    props = {k: v for k, v in props.items() if not formats.HADOOP_XML.problems(k, v)}
    assume(not (formats.text_problem(secret) or formats.xml_problem(secret)) and secret)
    assume("corral.secret" not in props)
    expected = {k: _plain(v) for k, v in props.items()} | {"corral.secret": secret}
    finals = tuple(props)[:1] if final else ()
    spec = FileSpec(path="/n/core-site.xml", format="xml",
                    content=formats.hadoop_xml({**props, "corral.secret": secrets.placeholder("s")}, finals))
    path = _write(tmp_path_factory.mktemp("x"), "core-site.xml", _pipeline(spec, secret))
    assert readers["hadoop"].read("hadoop", path) == expected
    assert readers["spark"].read("hadoop", path) == expected


def test_what_hadoop_xml_refuses_would_change_in_hadoops_hands(readers: dict[str, JavaReader], tmp_path: Path) -> None:
    """Rendered as it stands, each refused name or value reads back as something else."""
    path = _write(tmp_path, "refused.xml", '<?xml version="1.0"?>\n<configuration>\n'
                  "<property><name> padded </name><value>v</value></property>\n"
                  "<property><name>empty</name><value></value></property>\n"
                  "<property><name>raw.cr</name><value>a\rb</value></property>\n</configuration>\n")
    assert readers["hadoop"].read("hadoop", path) == {"padded": "v", "raw.cr": "a\nb"}
    assert formats.HADOOP_XML.problems(" padded ", "v") == [
        "the name starts or ends with whitespace, which Hadoop's Configuration trims off"]
    assert formats.HADOOP_XML.problems("empty", "")[0].startswith("the value is empty: Hadoop's Configuration ignores")
    assert formats.hadoop_xml({"raw.cr": "a\rb"}).count("a&#13;b") == 1  # a CR is written so it stays a CR
    control = _write(tmp_path, "control.xml", '<?xml version="1.0"?>\n<configuration><property><name>c</name>'
                     "<value>&#1;</value></property></configuration>\n")
    with pytest.raises(AssertionError, match="Illegal character|Invalid"):
        readers["hadoop"].read("hadoop", control)
    with pytest.raises(formats.RenderError, match="XML 1.0 cannot carry"):
        formats.xml_text("\x01")


# -- shell: hadoop-env.sh, spark-env.sh ---------------------------------------------------------

SHELL_ENV = {"CORRAL_A": 'a"b\\c$`x` ${CORRAL_B}', "CORRAL_B": "b"}
# Literal text without `$` (expansions come only from the tokens below), `_` and upper case
# (so that no chunk after a `$` can name one of bash's own variables, such as $_ or $PWD).
SHELL_CHUNKS = st.text(st.one_of(st.sampled_from([c for c in SPECIAL if c not in "$\r\n\0"]),
                                 st.characters(blacklist_characters="$_\r\n\0", blacklist_categories=("Lu",))), max_size=6)
SHELL_TOKENS = ["$CORRAL_A", "${CORRAL_B}", "$CORRAL_UNSET", "${CORRAL_A}x", "$", "$$", "$(", "$((1))", "$1", "$@", "$?",
                "${", "$}", "${CORRAL_A:-x}", "${#CORRAL_A}", "$'", "`id`", "\\$CORRAL_A", "${SPARK_HOME}", "$${SPARK_HOME}",
                "$SPARK_HOME", "${PYTHON}x"]
SHELL_TEXT = st.lists(st.one_of(SHELL_CHUNKS, st.sampled_from(SHELL_TOKENS)), max_size=8).map("".join)
SHELL_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_RUNTIME_OR_REFERENCE = re.compile(r"(\$?)\$\{(SPARK_HOME|PYTHON|JAVA_HOME|HADOOP_HOME|SPARK_CDS_OPTS|HADOOP_CDS_OPTS)\}")
_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _shell_meaning(value: str, env: dict[str, str]) -> str:
    """The documented meaning of a shell value: the agent's runtime placeholders first
    (their values literal), then ``$NAME``/``${NAME}`` in the rest; all else literal."""
    out, last = [], 0
    for match in _RUNTIME_OR_REFERENCE.finditer(value):
        out.append(_REFERENCE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value[last:match.start()]))
        out.append(match.group(0)[1:] if match.group(1) else RUNTIME[match.group(2)])
        last = match.end()
    out.append(_REFERENCE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value[last:]))
    return "".join(out)


def _source(script: str, names: list[str], env: dict[str, str]) -> list[str]:
    """The variables' values after bash sources ``script`` (as the launcher does: `set -e`)."""
    shown = " ".join(f'"${{{n}}}"' for n in names)
    done = subprocess.run(["/bin/bash", "-c", f'set -e; . /dev/stdin; printf "%s\\0" {shown}'], input=script.encode(),
                          env=env, capture_output=True, timeout=10)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    return done.stdout.decode().split("\0")[:-1]


@EXAMPLES
@given(props=st.dictionaries(SHELL_NAMES, SHELL_TEXT, min_size=1, max_size=5), secret=TEXT)
def test_shell_exports_expand_variables_and_keep_everything_else_literal(props: dict[str, str], secret: str) -> None:
    props = {k: v for k, v in props.items() if not formats.SHELL_EXPORTS.problems(k, v)
             and not k.startswith("CORRAL_") and k not in ("SPARK_HOME", "PYTHON", "HOME", "PATH")}
    assume(formats.text_problem(secret) is None)
    trailer = {"SPARK_LOCAL_IP": "127.0.0.9", "SPARK_LOCAL_DIRS": "/n/$x `y`"}
    spec = FileSpec(path="/n/spark-env.sh", format="shell",
                    content=formats.shell_exports({**props, "CORRAL_SECRET": secrets.placeholder("s")}, "test", trailer))
    names = [*props, "CORRAL_SECRET", *trailer]
    seen = dict(zip(names, _source(_pipeline(spec, secret), names, SHELL_ENV)))
    expected = {k: _shell_meaning(v, SHELL_ENV) for k, v in props.items()}
    assert seen == {**expected, "CORRAL_SECRET": secret, **trailer}


@EXAMPLES
@given(text=TEXT)
def test_a_literal_in_a_shell_file_and_a_protected_text_through_the_agent_stay_themselves(text: str) -> None:
    assume(formats.text_problem(text) is None)
    assert _source(f'export X="{formats.shell_literal(text)}"\n', ["X"], {}) == [text]
    assert substitute(protect_runtime_placeholders(text), RUNTIME) == text


def test_the_append_idiom_works_where_the_variable_is_unset_under_the_launchers_set_u() -> None:
    script = formats.shell_exports({"HADOOP_OPTS": "$HADOOP_OPTS -Dcorral.x=1"}, "hadoop-env")
    launcher_way = 'set -eu; set +u; . /dev/stdin; set -u; printf "%s" "$HADOOP_OPTS"'
    done = subprocess.run(["/bin/bash", "-c", launcher_way], input=script.encode(), capture_output=True, env={})
    assert (done.returncode, done.stdout) == (0, b" -Dcorral.x=1")


# -- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, key, value, problem", [
    (formats.SPARK_PROPERTIES, "spark.x", "a\0b", "the value contains a NUL character (U+0000) at offset 1"),
    (formats.SPARK_PROPERTIES, "spark.x", "a\udc80", "the value contains a lone surrogate (U+DC80) at offset 1"),
    (formats.SPARK_PROPERTIES, "x", "v", "the name does not start with 'spark.'"),
    (formats.SPARK_PROPERTIES, "", "v", "the property name is empty"),
    (formats.SPARK_PROPERTIES, "spark.x", "{{secret:object_storage.secret_key}}", "the value contains '{{secret:'"),
    (formats.HADOOP_XML, "fs.x", "a\x1bb", "the value contains U+001B at offset 1, a character XML 1.0 cannot carry"),
    (formats.HADOOP_XML, "fs.x", "\ufffe", "the value contains U+FFFE at offset 0, a character XML 1.0 cannot carry"),
    (formats.HADOOP_XML, "fs.\x0c", "v", "the name starts or ends with whitespace"),
    (formats.HADOOP_XML, "{{secret:k}}", "v", "the name contains '{{secret:'"),
    (formats.SHELL_EXPORTS, "HADOOP_OPTS", "-Da\n-Db", "the value contains a line break (U+000A) at offset 3"),
    (formats.SHELL_EXPORTS, "HADOOP_OPTS", "-Da\r", "the value contains a line break (U+000D) at offset 3"),
    (formats.SHELL_EXPORTS, "MY-VAR", "v", "the name is not a shell variable name"),
    (formats.SHELL_EXPORTS, "1X", "v", "the name is not a shell variable name"),
    (formats.SHELL_EXPORTS, "IFS", ":", "the name is a variable bash sets itself"),
    (formats.SHELL_EXPORTS, "UID", "1", "the name is a variable bash sets itself"),
])
def test_what_each_format_refuses(fmt: formats.Format, key: str, value: str, problem: str) -> None:
    assert any(found.startswith(problem) for found in fmt.problems(key, value)), fmt.problems(key, value)


@pytest.mark.parametrize("fmt, key, value", [
    (formats.SPARK_PROPERTIES, "spark.x", "C:\\temp\\new #x\n\t\x01 é😀 ${SPARK_HOME} $${X} =:!"),
    (formats.SPARK_PROPERTIES, "spark.e", ""),
    (formats.HADOOP_XML, "a key with ${inner} spaces", "x<y&z\r\n\t]]>${user.name}"),
    (formats.SHELL_EXPORTS, "HADOOP_OPTS", '$HADOOP_OPTS "-Dq=`x`" \\ $(id)'),
])
def test_what_each_format_carries(fmt: formats.Format, key: str, value: str) -> None:
    assert fmt.problems(key, value) == []


def test_renderers_refuse_what_validation_refuses_instead_of_writing_it() -> None:
    with pytest.raises(formats.RenderError):
        formats.shell_exports({"X": "a\nb"}, "h")
    with pytest.raises(formats.RenderError):
        formats.shell_exports({"IFS": "x"}, "h")
    with pytest.raises(formats.RenderError):
        formats.properties_key("")
    with pytest.raises(formats.RenderError):
        formats.hadoop_xml({"k": "\x00"})
