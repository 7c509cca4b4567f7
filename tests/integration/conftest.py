"""Integration fixtures: a real control-plane server process (uvicorn), with its own home,
port and loopback subnet, that real agents and real Spark daemons talk to."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import psutil
import pytest

from corral.cli.paging import list_all, read_log
from corral.cli.ship import ship_cluster_spec, ship_step
from tests.processes import stop_child

pytestmark = pytest.mark.integration
_subnets = itertools.count(0)
ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
STEP_FINAL = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
SMALL_SPEC: dict[str, Any] = {
    "name": "it",
    "services": ["spark"],
    "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": 2},
    ],
}

# Test clusters run on a 2-core CI box where every JVM competes for the CPU (it is busy
# ~93 % of a cluster test). The short-lived JVMs the tests start, Spark drivers and
# executors and MapReduce tasks, compile with C1 only and use the serial collector, as
# Corral's own daemons always do: about half the CPU time of a small Spark application.
# A long production job wants C2, so this is the tests' choice, not a Corral default.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
DEFAULT_SERVICES = ("hdfs", "yarn", "mapreduce", "spark")


def with_test_jvm_options(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` plus the test JVM options, for the services it has and where it sets none."""
    services = spec.get("services") or DEFAULT_SERVICES
    configurations = list(spec.get("configurations") or [])
    given = {c.get("classification") for c in configurations if isinstance(c, dict)}
    if "spark" in services and "spark-defaults" not in given:
        configurations.append({"classification": "spark-defaults", "properties": {
            # Not spark.yarn.am.extraJavaOptions: it would replace Corral's, which map the
            # class-data archive (the driver's and executors' are added to Corral's).
            "spark.driver.extraJavaOptions": TEST_JVM_OPTIONS, "spark.executor.extraJavaOptions": TEST_JVM_OPTIONS}})
    if "mapreduce" in services and "mapred-site" not in given:
        configurations.append({"classification": "mapred-site", "properties": {
            "mapreduce.map.java.opts": TEST_JVM_OPTIONS, "mapreduce.reduce.java.opts": TEST_JVM_OPTIONS}})
    return {**spec, "configurations": configurations} if configurations else spec


# The timeout of a step that is to say why its work waits and then be ended by that timeout
# (test_hadoop, test_steps). The services say so once a wait has lasted their 15 s grace
# (WAIT_GRACE_SECONDS), checked every 5 s: with Spark's start-up, 36-51 s after the step's
# start on a busy 2-core box. The rest of the timeout is that margin, waited for in full.
WAIT_STEP_TIMEOUT = 70

# Tests poll daemons' REST APIs in loops: one shared client, since httpx.get builds a new
# client (and SSL context) per call, ~50 ms of CPU each on this 2-core machine.
HTTP = httpx.Client(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_processes(cluster_id: str) -> list[psutil.Process]:
    """Live (non-zombie) processes that carry the cluster's id in their environment."""
    found = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get("CORRAL_CLUSTER_ID") == cluster_id:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def jvm_main_class(proc: psutil.Process) -> str:
    """The main class of a Hadoop/Spark/Hive Java process ('' for anything else)."""
    cmd = proc.cmdline()
    if not cmd or Path(cmd[0]).name != "java":
        return ""
    return next((arg for arg in cmd[1:] if arg.startswith(("org.apache.", "io.corral."))), "")


def class_data_archive_use(cluster_id: str, kinds: set[str], archive: str = "spark") -> dict[str, bool]:
    """For the cluster's running JVMs whose main class's simple name is in ``kinds``: by
    name, whether every one of them has mapped the host's ``archive`` ("spark" or "hadoop")
    class-data archive (``corral.runtime.cds``). A JVM whose class path does not match the
    archive unmaps it at start-up, so a mapping is the proof that it is used."""
    found: dict[str, bool] = {}
    for proc in cluster_processes(cluster_id):
        try:
            main = jvm_main_class(proc).rsplit(".", 1)[-1]
            if main in kinds:
                mapped = any(m.path.endswith(".jsa") and f"/cds/{archive}-" in m.path for m in proc.memory_maps())
                found[main] = found.get(main, True) and mapped
        except (psutil.Error, OSError):
            continue
    return found


def listening_on(addresses: set[str]) -> list[tuple[str, int]]:
    return sorted({(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                   if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip in addresses})


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``corral ARGS`` as a user runs it, against the control plane that ``env`` names."""
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


class ControlPlaneProcess:
    """``python -m corral.server`` in its own CORRAL_HOME; can be killed and restarted."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_PORT": str(self.port),
                    "CORRAL_LOCAL_SUBNET": f"127.{60 + next(_subnets)}.0.0/16"}
        self.env.pop("CORRAL_URL", None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url + "/api/v1", timeout=30)

    def start(self) -> None:
        log = open(self.home / "server-test.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "corral.server"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, (self.home / "server-test.log").read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError("control plane did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, grace=20)
            self.proc = None

    # -- API helpers --------------------------------------------------------------------------

    def create(self, spec: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        """Create a cluster the way the CLI does: local bootstrap scripts and step files are
        uploaded first (``corral.cli.ship``)."""
        spec = ship_cluster_spec(self.http, with_test_jvm_options({**(spec or SMALL_SPEC), **overrides}))
        resp = self.http.post("/clusters", json=spec)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/clusters/{cluster_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_cluster(self, cluster_id: str, states: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            cluster = self.cluster(cluster_id)
            if cluster["status"] in states:
                return cluster
            if cluster["status"] in ENDED or time.monotonic() > deadline:
                raise AssertionError(f"cluster {cluster_id} is {cluster['status']}, wanted {states}: "
                                     f"{cluster['state_change_reason']}\nevents: {self.events(cluster_id)[-15:]}")
            time.sleep(0.25)

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def add_step(self, cluster_id: str, type_: str, args: list[str], **extra: Any) -> dict[str, Any]:
        """Add a step the way the CLI does: its local files are uploaded first."""
        step = ship_step(self.http, {"type": type_, "args": args, **extra})
        resp = self.http.post(f"/clusters/{cluster_id}/steps", json={"steps": [step]})
        assert resp.status_code == 201, resp.text
        return resp.json()["steps"][0]

    def step(self, cluster_id: str, step_id: str) -> dict[str, Any]:
        return self.http.get(f"/clusters/{cluster_id}/steps/{step_id}").json()

    def wait_step(self, cluster_id: str, step_id: str, timeout: float = 180) -> dict[str, Any]:
        return self.wait_for(lambda: (s := self.step(cluster_id, step_id))["status"] in STEP_FINAL and s,
                             timeout, f"step {step_id} to end")

    def log(self, cluster_id: str, step_id: str, stream: str = "stdout") -> str:
        """The whole log: every page."""
        return read_log(self.http, f"/clusters/{cluster_id}/steps/{step_id}/logs/{stream}").decode(errors="replace")

    def events(self, cluster_id: str) -> list[dict[str, Any]]:
        return list_all(self.http, f"/clusters/{cluster_id}/events")

    def clusters(self) -> list[dict[str, Any]]:
        return list_all(self.http, "/clusters")

    def steps(self, cluster_id: str) -> list[dict[str, Any]]:
        return list_all(self.http, f"/clusters/{cluster_id}/steps", key="steps")

    def terminate(self, cluster_id: str, wait: bool = True) -> dict[str, Any]:
        self.http.post(f"/clusters/{cluster_id}/terminate")
        return self.wait_cluster(cluster_id, ENDED, timeout=120) if wait else self.cluster(cluster_id)

    def cleanup(self) -> None:
        """Terminate every cluster of this home; kill anything that would still be left."""
        ids: list[str] = []
        if self.proc is not None:
            try:
                clusters = self.clusters()
                ids = [c["id"] for c in clusters]
                for c in clusters:
                    if c["status"] not in ENDED:
                        self.http.post(f"/clusters/{c['id']}/terminate")
                for cid in ids:
                    self.wait_for(lambda cid=cid: self.cluster(cid)["status"] in ENDED, 120, f"{cid} to end")
            except (httpx.HTTPError, AssertionError):
                pass
        self.stop()
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("CORRAL_NODE_ID") and str(self.home) in " ".join(proc.cmdline() + [proc.cwd()]):
                    proc.kill()
            except (psutil.Error, OSError):
                continue
        self.http.close()


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlaneProcess]:
    """A control plane of the test's own (for tests that kill or restart it)."""
    cp = ControlPlaneProcess(tmp_path / "home")
    cp.home.mkdir()
    cp.start()
    yield cp
    cp.cleanup()


@pytest.fixture(scope="session")
def shared_cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    cp = ControlPlaneProcess(tmp_path_factory.mktemp("shared") / "home")
    cp.home.mkdir()
    cp.start()
    yield cp
    cp.cleanup()


# Issue 10: values every reader must get exactly as Corral documents them. spark-defaults is
# Java properties (Spark's driver read `C:<TAB>emp<LF>ew #x` when Corral wrote it raw);
# spark-env is shell: `$NAME` expands, the rest is literal; ${SPARK_HOME} is the node's path.
ISSUE10_SPARK_VALUE = "C:\\temp\\new #x"
ISSUE10_SPARK_ENV = 'C:\\temp "q" `id` $(id) $CORRAL_CLUSTER_ID ${SPARK_HOME}/x \''
# core-site is Hadoop XML: a CR, XML's own characters, non-ASCII and an unknown ${var} (which
# Hadoop leaves as it is) reach Configuration; hadoop-env adds to HADOOP_OPTS, which Hadoop
# then expands in ${corral.env.test}.
ISSUE10_HADOOP_VALUE = "a\rb & <c> é€😀 C:\\temp #x ${corral.missing}"
ISSUE10_HADOOP_CONFIGURATIONS = [
    {"classification": "core-site", "properties": {"corral.test.value": ISSUE10_HADOOP_VALUE,
                                                   "corral.test.expanded": "${corral.env.test}"}},
    {"classification": "hadoop-env", "properties": {"HADOOP_OPTS": "$HADOOP_OPTS -Dcorral.env.test=from-hadoop-env"}},
]


@pytest.fixture(scope="session")
def spark_cluster(shared_cp: ControlPlaneProcess) -> dict[str, Any]:
    """One WAITING 1 MASTER + 2 CORE Spark cluster that step tests share."""
    cluster = shared_cp.create(name="shared", configurations=[
        {"classification": "spark-defaults", "properties": {
            "spark.corral.test": ISSUE10_SPARK_VALUE,
            "spark.driver.extraJavaOptions": TEST_JVM_OPTIONS, "spark.executor.extraJavaOptions": TEST_JVM_OPTIONS}},
        {"classification": "spark-env", "properties": {"CORRAL_TEST_ENV": ISSUE10_SPARK_ENV}}])
    return shared_cp.wait_cluster(cluster["id"], ("WAITING",))


# Session clusters that several modules share (test_api_security, test_bad_input, test_steps
# for spark_cluster). Those modules run one after another, and the cluster ends after the last
# test that uses it: left up, its daemons and agents took CPU from every module after them
# (test_data ran about a fifth slower in the suite than alone on this 2-core machine).
# hadoop_cluster's modules are neighbours already, and test_hadoop's last test ends it.
SHARED_SESSION_CLUSTERS = ("spark_cluster",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules sharing a session cluster move up to the first of them; otherwise file order."""
    modules: dict[Path, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path, []).append(item)

    def uses(path: Path, fixture: str) -> bool:
        return any(fixture in getattr(i, "fixturenames", ()) for i in modules[path])

    ordered: list[pytest.Item] = []
    placed: set[Path] = set()
    for path in modules:
        if path in placed:
            continue
        shared = next((f for f in SHARED_SESSION_CLUSTERS if uses(path, f)), None)
        group = [m for m in modules if m not in placed and uses(m, shared)] if shared else [path]
        for member in group:
            placed.add(member)
            ordered.extend(modules[member])
    items[:] = ordered


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Terminate a shared session cluster after the last selected test that uses it."""
    funcargs = getattr(item, "funcargs", {})
    for name in SHARED_SESSION_CLUSTERS:
        if name not in funcargs or "shared_cp" not in funcargs:
            continue
        later = item.session.items[item.session.items.index(item) + 1:]
        if not any(name in getattr(i, "fixturenames", ()) for i in later):
            cp, cluster = funcargs["shared_cp"], funcargs[name]
            if cp.cluster(cluster["id"])["status"] not in ENDED:
                cp.terminate(cluster["id"])


# The release's default services: HDFS, YARN, MapReduce and Spark on YARN.
HADOOP_SPEC: dict[str, Any] = {
    "name": "hadoop",
    "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": 2},
    ],
}


@pytest.fixture(scope="session")
def hadoop_cluster(shared_cp: ControlPlaneProcess) -> dict[str, Any]:
    """One WAITING 1 MASTER + 2 CORE Hadoop + Spark cluster that Hadoop tests share
    (test_fs, then test_hadoop, whose last test terminates it)."""
    cluster = shared_cp.create({**HADOOP_SPEC, "configurations": ISSUE10_HADOOP_CONFIGURATIONS})
    return shared_cp.wait_cluster(cluster["id"], ("WAITING",), timeout=180)


@pytest.fixture(scope="session")
def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent
