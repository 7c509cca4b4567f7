"""A host with nothing of Corral's, simulated on this machine as honestly as one machine
allows: Debian's own /usr/bin/python3.11 (not the control plane's virtual environment),
a base directory and runtime cache of its own, no PYTHONPATH, `pip` and `mvn` on PATH
replaced by tripwires, and a real control plane server process reached over HTTP.

The host installs the agent from the repository's agent bundle (``corral.hosts.agent_install``,
offline, run as the ssh provider runs it), and that agent deploys the release runtime of a real cluster's plan from the
repository's runtime bundle; `spark-submit --version` and `hadoop version` (Corral's own
launcher from the plan) then run from the shipped runtime. A second node on the host
fetches nothing, and the shipped class-data archives map in the host's JVMs. (Separate
hosts in network namespaces come with the host lab.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from corral.hosts import agent_install, layout
from corral.runtime import cds
from corral.runtime.repository import agent_bundle
from tests.integration.conftest import ControlPlaneProcess

pytestmark = pytest.mark.integration
HOST_PYTHON = "/usr/bin/python3.11"
SERVER_ONLY = ("fastapi", "sqlalchemy", "typer", "uvicorn", "alembic", "pyspark")
SPEC: dict[str, Any] = {
    "name": "host-runtime",
    # The smallest cluster whose plan has Corral's Hadoop launcher (HDFS's); every plan has Spark.
    "services": ["hdfs"],
    "node_groups": [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                    {"role": "CORE", "instance_type": "local.small", "count": 1}],
}

DEPLOY = """
import json, sys, time
from pathlib import Path
import corral
from corral.agent.client import ControlPlaneClient
from corral.agent.runtime import deploy, substitute
from corral.formats import LITERAL
url, cluster, node, token_file, runtime_dir, files_dir = sys.argv[1:]
client = ControlPlaneClient(url, cluster, node, Path(token_file).read_text().strip())
plan = None
while plan is None:  # None until the control plane has recorded the node's address
    plan = client.fetch_plan(0, 20)
events = []
started = time.monotonic()
values = deploy(plan.runtime, Path(runtime_dir), client, lambda *event: events.append(event))
seconds = time.monotonic() - started
launcher = next(f for f in plan.files if f.path.endswith("/bin/corral-hadoop"))
path = Path(files_dir) / "corral-hadoop"
path.write_text(substitute(launcher.content, values, LITERAL.get(launcher.format, str)))
path.chmod(0o755)
print(json.dumps({"corral": corral.__file__, "bundle": plan.runtime.bundle, "values": values, "events": events,
                  "seconds": seconds, "launcher": str(path)}))
"""


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    home = Path(f"/tmp/corral-it-hostrt-{os.getpid()}")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    cp = ControlPlaneProcess(home)
    cp.start()
    try:
        yield cp
    finally:
        for cluster in cp.http.get("/clusters").json():
            cp.http.post(f"/clusters/{cluster['id']}/terminate")
        for cluster in cp.http.get("/clusters").json():
            try:
                cp.wait_cluster(cluster["id"], ("TERMINATED", "TERMINATED_WITH_ERRORS"), timeout=120)
            except AssertionError:
                pass
        cp.stop()
        shutil.rmtree(home, ignore_errors=True)


def host_env(tmp_path: Path) -> dict[str, str]:
    """What a host's login shell has: none of this machine's Python set-up, and `pip` and
    `mvn` that record any call (nothing on a host may reach PyPI or Maven Central)."""
    tripwires = tmp_path / "tripwires"
    tripwires.mkdir()
    for tool in ("pip", "pip3", "mvn"):
        (tripwires / tool).write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {tmp_path}/tripped\nexit 1\n")
        (tripwires / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CORRAL_", "PIP_"))}
    env["PATH"] = f"{tripwires}:{env['PATH']}"
    env["HOME"] = str(tmp_path / "home")
    Path(env["HOME"]).mkdir()
    return env


def assert_shipped_class_data_maps(values: dict[str, str], env: dict[str, str]) -> None:
    """The class-data archives trained on the control plane's machine map in JVMs started
    from the host's copy of the runtime (``-Xshare:on`` fails otherwise): its deploy took the
    anchors over (``corral.runtime.cds``) and named the host's archives in the JVM options."""
    mains = {"spark": ("jars", "org.apache.spark.deploy.SparkSubmit", "--version"),
             "hadoop": ("lib", "org.apache.hadoop.util.VersionInfo")}
    for kind, (jars, main, *args) in mains.items():
        home = values[f"{kind.upper()}_HOME"]
        assert cds.anchor_path(kind, home).resolve() == Path(home).resolve(), kind
        archive = cds.archive_path(Path(layout.runtime_cache(env["HOME"])), values["JAVA_HOME"], kind, home)
        assert values[f"{kind.upper()}_CDS_OPTS"] == cds.java_options(archive) and archive.is_file(), kind
        java = subprocess.run([f"{values['JAVA_HOME']}/bin/java", "-Xshare:on", f"-XX:SharedArchiveFile={archive}",
                               "-Xlog:cds=off", "-cp", f"{home}/{jars}/*", main, *args], env=env, cwd=env["HOME"],
                              capture_output=True, text=True, timeout=120)
        assert java.returncode == 0, f"{kind}: {java.stdout[-500:]}{java.stderr[-1500:]}"


@pytest.fixture
def anchors_restored() -> Iterator[None]:
    """The class-data anchors as they were (the control plane's runtime's, which its own
    cluster's JVMs map) once the test's host copy took them over."""
    saved = {p: os.readlink(p) for p in cds.ANCHORS.glob("[!.]*") if p.is_symlink()}
    try:
        yield
    finally:
        for anchor, target in saved.items():  # the same jars, so the same anchor: "<kind>-<digest>"
            assert cds.ensure_anchor(anchor.name.split("-", 1)[0], target), anchor


def run(argv: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 600) -> str:
    # In the host's home: `-c` and `-` put the working directory first on sys.path, and this
    # one (the repository) has Corral's sources.
    result = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=timeout,
                            cwd=env["HOME"])
    assert result.returncode == 0, f"{argv[:3]} exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_host_installs_the_agent_and_deploys_the_runtime_from_the_repository(
        server: ControlPlaneProcess, tmp_path: Path, anchors_restored: None) -> None:
    cluster = server.create(SPEC)
    node = next(n for n in server.cluster(cluster["id"])["nodes"] if n["role"] == "MASTER")
    token_source = server.wait_for(lambda: next(server.home.glob(f"nodes/{cluster['id']}/*/run/agent.token"), None),
                                   60, "the nodes' agent token")
    env = host_env(tmp_path)
    base = Path(layout.base(env["HOME"]))
    token = tmp_path / "agent.token"
    token.write_text(token_source.read_text())
    token.chmod(0o600)

    # The agent: wheels over HTTP, an environment of its own, offline; the installer's
    # files copied and run as the ssh provider does (token on stdin).
    bundle = agent_bundle()
    helpers = base / "agent"
    helpers.mkdir(parents=True)
    for name, data in agent_install.files().items():
        (helpers / name).write_bytes(data)
    home = env["HOME"]
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(agent_install.manifest(
        server.url, layout.wheel_cache(home), layout.agent_env(home, bundle.digest), layout.install_lock(home),
        [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in bundle.artifacts]))
    install = [HOST_PYTHON, str(helpers / "agent_install.py"), str(manifest)]
    started = time.monotonic()
    first = json.loads(run(install, env, stdin=token.read_text() + "\n"))
    install_seconds = time.monotonic() - started
    assert first["installed"] and first["fetched_bytes"] == bundle.size
    assert first["python"] == f"{layout.agent_env(home, bundle.digest)}/bin/python"
    again = json.loads(run(install, env, stdin=token.read_text() + "\n"))
    assert (again["installed"], again["fetched_bytes"]) == (False, 0)
    probe = "import importlib.util; print([m for m in %r if importlib.util.find_spec(m)])" % (SERVER_ONLY,)
    assert run([first["python"], "-c", probe], env).strip() == "[]"  # the agent's closure only: no server, no pyspark

    # The runtime: the real plan's RuntimeSpec, archives from the repository into the host's cache.
    runtime_dir = Path(layout.runtime_cache(env["HOME"]))
    argv = [first["python"], "-c", DEPLOY, server.url, cluster["id"], node["id"], str(token), str(runtime_dir)]
    (tmp_path / "n1").mkdir()
    deployed = json.loads(run([*argv, str(tmp_path / "n1")], env, timeout=900))
    values = deployed["values"]
    assert deployed["corral"].startswith(str(base / "agent")) and deployed["bundle"] == "runtime-corral-1.0"
    for name in ("SPARK_HOME", "HADOOP_HOME", "PYTHONPATH"):
        assert values[name].startswith(str(runtime_dir)), name
    fetched = [e for e in deployed["events"] if e[1] == "RUNTIME_FETCHED"]
    assert [e[2].split(":")[0] for e in fetched] == ["Spark 4.3.0", "Hadoop 3.5.0", "spark class data",
                                                     "hadoop class data"], deployed["events"]
    tool_env = {**env, "JAVA_HOME": values["JAVA_HOME"], "SPARK_HOME": values["SPARK_HOME"],
                "PYTHONPATH": values["PYTHONPATH"]}
    spark = subprocess.run([f"{values['SPARK_HOME']}/bin/spark-submit", "--version"], env=tool_env, cwd=env["HOME"],
                           capture_output=True, text=True, timeout=120)
    assert spark.returncode == 0 and "version 4.3.0" in spark.stdout + spark.stderr, spark.stderr[-2000:]
    hadoop = subprocess.run([deployed["launcher"], "hadoop", "version"], env=tool_env, cwd=env["HOME"], capture_output=True, text=True, timeout=120)
    assert hadoop.returncode == 0 and "Hadoop 3.5.0" in hadoop.stdout, hadoop.stdout[-1000:] + hadoop.stderr[-2000:]

    assert_shipped_class_data_maps(values, tool_env)

    # Another node on the same host: everything is in the cache already.
    (tmp_path / "n2").mkdir()
    second = json.loads(run([*argv, str(tmp_path / "n2")], env))
    assert second["events"] == [] and second["values"] == values
    assert not (tmp_path / "tripped").exists(), (tmp_path / "tripped").read_text()
    print(f"\nhost: agent install {install_seconds:.1f} s ({first['fetched_bytes']} bytes); "
          f"runtime deploy {deployed['seconds']:.1f} s: " + "; ".join(e[2] for e in fetched), file=sys.stderr)
