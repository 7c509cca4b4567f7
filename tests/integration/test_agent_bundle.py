"""The agent bundle installs offline into a fresh virtual environment of Debian's Python
3.11, as on a host with no internet, and has everything the agent and the runners import."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from corral.runtime.repository import agent_bundle, agent_requirement

pytestmark = pytest.mark.integration
HOST_PYTHON = "/usr/bin/python3.11"
NODE_MODULES = ("corral.agent.__main__", "corral.agent.agent", "corral.agent.runtime", "corral.jobs.transfer_run",
                "corral.jobs.streaming_run", "corral.runtime.cds", "corral.runtime.hadoop", "corral.runtime.repository")
SERVER_ONLY = ("fastapi", "sqlalchemy", "typer", "uvicorn", "alembic", "pyspark")


# The host has none of this machine's Python set-up (the tests' PYTHONPATH points at the sources).
HOST_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def test_the_bundle_alone_installs_the_agent_offline(tmp_path: Path) -> None:
    bundle = agent_bundle()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for artifact in bundle.artifacts:
        shutil.copy(artifact.path, wheels / artifact.name)
    env = tmp_path / "env"
    subprocess.run([HOST_PYTHON, "-m", "venv", str(env)], check=True, timeout=300, env=HOST_ENV)
    subprocess.run([str(env / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index", "--disable-pip-version-check",
                    "--find-links", str(wheels), agent_requirement(bundle)], check=True, timeout=300, env=HOST_ENV)
    probe = ("import importlib, importlib.util, sys\n"
             f"for m in {NODE_MODULES!r}: importlib.import_module(m)\n"
             f"print([m for m in {SERVER_ONLY!r} if importlib.util.find_spec(m)])\n"
             "import corral; print(corral.__file__)\n")
    out = subprocess.run([str(env / "bin/python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=True, env=HOST_ENV).stdout.splitlines()
    assert out[0] == "[]"  # none of the server's distributions, no pyspark
    assert out[1].startswith(str(env))
    installed = subprocess.run([str(env / "bin/python"), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                               text=True, check=True, env=HOST_ENV).stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in installed.split()}
    assert names - {"pip", "setuptools"} == {a.name.split("-")[0].lower().replace("_", "-") for a in bundle.artifacts}
