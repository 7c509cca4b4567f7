"""Secrets: placeholders filled only in plans, masked everywhere people look."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from corral import formats
from corral.agent.protocol import FileSpec, NodePlan, StepCommand
from corral.agent.runtime import substitute, substitute_all
from corral.formats import LITERAL
from corral.control.agents import mask_secrets
from corral.control.plans import with_secrets
from corral.domain import secrets


def test_expand_fills_known_names_and_refuses_unknown_ones() -> None:
    text = "key=" + secrets.placeholder("object_storage.secret_key")
    assert secrets.expand(text, {"object_storage.secret_key": "s3cr3t"}) == "key=s3cr3t"
    with pytest.raises(KeyError, match="not set"):
        secrets.expand(text, {})
    assert secrets.mask(text) == "key=********"


def test_properties_shown_to_people_hide_sensitive_names_and_placeholders() -> None:
    shown = secrets.masked_properties({"fs.s3a.secret.key": secrets.placeholder("x"), "javax.jdo.option.ConnectionPassword": "pw",
                                       "fs.s3a.access.key": "AKIA1", "fs.s3a.endpoint": "http://127.0.0.1:9000"})
    assert shown == {"fs.s3a.secret.key": "********", "javax.jdo.option.ConnectionPassword": "********",
                     "fs.s3a.access.key": "AKIA1", "fs.s3a.endpoint": "http://127.0.0.1:9000"}


def _plan(files: list[FileSpec], steps: list[StepCommand] | None = None) -> NodePlan:
    return NodePlan(version=1, cluster_id="c", node_id="n", role="MASTER", address="127.0.0.2", terminate=False,
                    runtime={"release": "r", "spark_version": "4.3.0", "java_major": 17}, files=files, steps=steps or [])


def test_plans_carry_secrets_escaped_for_each_file_and_never_runtime_substituted() -> None:
    value = 'p"a\\s$s{}<&>\r\n ${JAVA_HOME} `x`'
    runtime = {"JAVA_HOME": "/opt/jdk"}
    ref = secrets.placeholder("k")
    plan = _plan([FileSpec(path="/x/core-site.xml", content=f"<v>{ref}</v>", format="xml"),
                  FileSpec(path="/x/spark-defaults.conf", content=f"k {ref}\n", format="properties"),
                  FileSpec(path="/x/env.sh", content=f'export K="{ref}"\n', format="shell")],
                 [StepCommand(id="s", argv=["x", ref], env={"PW": secrets.placeholder("s:PW")}, artifacts=[], cancel=False)])
    filled = with_secrets(plan, {"k": value, "s:PW": "pw ${JAVA_HOME}"})
    xml, props, shell = (substitute(f.content, runtime, LITERAL[f.format]) for f in filled.files)
    assert ET.fromstring(xml).text == value
    assert props == "k " + formats.properties_value(value) + "\n"
    assert substitute_all(filled.steps[0].env, runtime)["PW"] == "pw ${JAVA_HOME}"
    assert filled.steps[0].argv == ["x", ref]  # command lines (user arguments) are never filled in
    assert secrets.placeholder("k") in plan.files[0].content  # the stored plan is untouched
    script = 'set -u; . /dev/stdin; printf %s "$K"'
    assert subprocess.run(["/bin/bash", "-c", script], input=shell.encode(), capture_output=True).stdout.decode() == value


def test_a_placeholder_in_a_file_without_a_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="format 'text'"):
        with_secrets(_plan([FileSpec(path="/x/run.sh", content=secrets.placeholder("k"))]), {"k": "v"})


def test_logs_star_out_secrets_keeping_their_length() -> None:
    data = b"connecting with password hunter22 to db; again hunter22"
    masked = mask_secrets(data, ["hunter22", "abc"])  # too short to mask safely: left alone
    assert masked == b"connecting with password ******** to db; again ********" and len(masked) == len(data)
    assert secrets.scrub("error: auth failed for hunter22", ["hunter22"]) == "error: auth failed for ********"
