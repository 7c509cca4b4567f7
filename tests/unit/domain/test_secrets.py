"""Secrets: placeholders filled only in plans, masked everywhere people look."""

from __future__ import annotations

import pytest

from corral.agent.protocol import FileSpec, NodePlan, StepCommand
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


def test_plans_carry_values_with_json_special_characters_intact() -> None:
    value = 'p"a\\s$s{}\n'
    plan = NodePlan(version=1, cluster_id="c", node_id="n", role="MASTER", address="127.0.0.2", terminate=False,
                    runtime={"release": "r", "spark_version": "4.3.0", "java_major": 17},
                    files=[FileSpec(path="/x/core-site.xml", content="<v>" + secrets.placeholder("k") + "</v>")],
                    steps=[StepCommand(id="s", argv=["x"], env={"PW": secrets.placeholder("s:PW")}, artifacts=[], cancel=False)])
    filled = with_secrets(plan, {"k": value, "s:PW": "pw2"})
    assert filled.files[0].content == f"<v>{value}</v>" and filled.steps[0].env["PW"] == "pw2"
    assert secrets.placeholder("k") in plan.files[0].content  # the stored plan is untouched


def test_logs_star_out_secrets_keeping_their_length() -> None:
    data = b"connecting with password hunter22 to db; again hunter22"
    masked = mask_secrets(data, ["hunter22", "abc"])  # too short to mask safely: left alone
    assert masked == b"connecting with password ******** to db; again ********" and len(masked) == len(data)
    assert secrets.scrub("error: auth failed for hunter22", ["hunter22"]) == "error: auth failed for ********"
