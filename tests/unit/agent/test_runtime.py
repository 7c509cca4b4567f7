"""Runtime placeholders: only the protocol's (${SPARK_HOME}, ${JAVA_HOME}, ...) are the agent's."""

from __future__ import annotations

from corral.agent.protocol import RUNTIME_PLACEHOLDERS
from corral import formats
from corral.agent.runtime import substitute, substitute_all

VALUES = {"HADOOP_HOME": "/opt/hadoop", "SPARK_HOME": "/opt/spark", "JAVA_HOME": "/usr/lib/jvm/17", "PYTHON": "/venv/bin/python",
          "SPARK_CDS_OPTS": "-XX:SharedArchiveFile=/c/s.jsa -Xlog:cds=off", "HADOOP_CDS_OPTS": "-Xshare:auto"}


def test_replaces_the_runtime_placeholders() -> None:
    assert substitute("${SPARK_HOME}/bin/spark-class", VALUES) == "/opt/spark/bin/spark-class"
    assert substitute("${JAVA_HOME}/bin:${SPARK_HOME}/bin", VALUES) == "/usr/lib/jvm/17/bin:/opt/spark/bin"
    assert substitute("spark.pyspark.python ${PYTHON}", VALUES) == "spark.pyspark.python /venv/bin/python"


def test_leaves_other_variables_for_the_shell() -> None:
    text = "${PATH}:${HOME}/x:$SPARK_HOME:${SPARK_HOME_X}:${spark_home}:${ SPARK_HOME }:$${CORRAL_NODE_ID}"
    assert substitute(text, VALUES) == text


def test_mixed_text() -> None:
    assert substitute("PATH=${SPARK_HOME}/bin:${JAVA_HOME}/bin:${PATH} ${PYTHON} -c 'print(\"${USER}\")'", VALUES) == (
        "PATH=/opt/spark/bin:/usr/lib/jvm/17/bin:${PATH} /venv/bin/python -c 'print(\"${USER}\")'")


def test_a_placeholder_without_a_value_stays() -> None:
    assert substitute("${SPARK_HOME}/bin ${PYTHON}", {"PYTHON": "/py"}) == "${SPARK_HOME}/bin /py"


def test_values_are_not_substituted_again() -> None:
    assert substitute("${PYTHON}", {"PYTHON": "${SPARK_HOME}", "SPARK_HOME": "/x"}) == "${SPARK_HOME}"


def test_a_doubled_dollar_is_the_placeholder_text_itself_and_values_are_escaped_for_the_file() -> None:
    assert substitute("$${SPARK_HOME} ${SPARK_HOME} $$${SPARK_HOME}", VALUES) == "${SPARK_HOME} /opt/spark $${SPARK_HOME}"
    assert substitute("$${NOT_OURS}", VALUES) == "$${NOT_OURS}"
    assert substitute("<v>${PYTHON}</v>", {"PYTHON": "/a&b"}, formats.LITERAL["xml"]) == "<v>/a&amp;b</v>"
    assert substitute('X="${PYTHON}"', {"PYTHON": '/p "$x"'}, formats.LITERAL["shell"]) == 'X="/p \\"\\$x\\""'


def test_the_placeholders_are_the_protocol_ones() -> None:
    assert {name for name in RUNTIME_PLACEHOLDERS} == set(VALUES)
    for name in RUNTIME_PLACEHOLDERS:
        assert substitute("${" + name + "}", VALUES) == VALUES[name]


def test_substitute_all() -> None:
    assert substitute_all({"A": "${SPARK_HOME}", "B": "${X}"}, VALUES) == {"A": "/opt/spark", "B": "${X}"}
    assert substitute_all(["${PYTHON}", "-m", "${MOD}"], VALUES) == ["/venv/bin/python", "-m", "${MOD}"]


def test_option_placeholders_become_one_argv_element_per_option() -> None:
    argv = ["${JAVA_HOME}/bin/java", "${SPARK_CDS_OPTS}", "-Dx=${SPARK_CDS_OPTS}", "Main"]
    assert substitute_all(argv, VALUES) == ["/usr/lib/jvm/17/bin/java", "-XX:SharedArchiveFile=/c/s.jsa", "-Xlog:cds=off",
                                            "-Dx=-XX:SharedArchiveFile=/c/s.jsa -Xlog:cds=off", "Main"]
    assert substitute_all(["java", "${SPARK_CDS_OPTS}", "Main"], {**VALUES, "SPARK_CDS_OPTS": ""}) == ["java", "Main"]
    assert substitute_all(["java", "${SPARK_HOME}"], {"SPARK_HOME": "/a b"}) == ["java", "/a b"]  # paths are not split
