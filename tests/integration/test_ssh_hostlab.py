"""Issue 11 §4 end to end, on three hosts made of network namespaces (``tests/hostlab.py``):
each its own address in 198.18.0.0/15, a real Debian sshd, and private /root, /tmp and
node directories; the control plane (``tests/hostlab_plane.py``) runs in PID and mount
namespaces of its own on the bridge address with API tokens required, so the only way
from it to a host is SSH and HTTP. Users drive it with the ``corral`` CLI.

One lab and one cluster serve every case, in order, the disruptive ones last:
registration and checks (a wrong fingerprint, a host without Java 17, a create that needs
more READY hosts than there are), tokens and roles, a Hadoop + Spark + Hive cluster whose
MapReduce and Spark work runs on its CORE hosts, ``corral fs`` and ``corral sql`` through
the master's address, secrets nowhere, then kill -9 of an agent, a link down and up, a
reboot, terminate (every host clean), a changed host key, drain, remove and add again
(what the former test_hosts checked against two plain sshds, on the lab's hosts)."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.hostlab import HostLab, LabHost
from tests.hostlab_plane import LabPlane
from tests.integration.conftest import HTTP, with_test_jvm_options

pytestmark = [pytest.mark.integration, pytest.mark.host_lab(4)]  # the 4th: the TASK group's

JAVA_FIX = "java: not found, need 17: apt-get install -y openjdk-17-jdk-headless"
WORDS = ("alpha beta gamma beta alpha alpha delta\n" * 40 + "omega beta\n" * 7)
EXPECTED_COUNTS = dict(sorted(collections.Counter(WORDS.split()).items()))
SPARK_JOB = textwrap.dedent("""
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("lab-words").getOrCreate()
    counts = (spark.sparkContext.textFile("hdfs:///in/words.txt", 4).flatMap(str.split)
              .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b, 4))
    spark.sql("CREATE TABLE words (word STRING, n BIGINT) USING parquet")
    spark.createDataFrame(counts, "word string, n bigint").write.insertInto("words")
    for word, n in sorted(counts.collect()):
        print(f"{word}={n}")
    print("app=" + spark.sparkContext.applicationId)
""")


@dataclass
class Lab:
    """What the module's tests share: the lab, its control plane, a token per role, and
    every answer and output a user saw (searched for secrets by a later test)."""

    hosts: HostLab
    plane: LabPlane
    key_path: Path
    tokens: dict[str, str]
    work: Path
    seen: list[str] = field(default_factory=list)
    cluster_id: str = ""

    def corral(self, role: str | None, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``corral ARGS`` run by a user holding ``role``'s token (None: no token)."""
        env = self.plane.cli_env(self.tokens[role] if role else None)
        done = subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=self.work)
        self.seen += [done.stdout, done.stderr]
        return done

    def json(self, role: str, *args: str, timeout: float = 900) -> Any:
        done = self.corral(role, *args, "-o", "json", timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def get(self, path: str) -> Any:
        resp = self.plane.http.get(path)
        self.seen.append(resp.text)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def lab(host_lab: HostLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    (root / "cp").mkdir()
    plane = LabPlane(host_lab, root / "cp")
    try:
        # As `corral token create` on the control plane's host: no token needed there.
        tokens = {role: plane.token(role, role) for role in ("operator", "viewer")}
        tokens["admin"] = plane.admin_token
        yield Lab(host_lab, plane, Path(host_lab.client_key_path), tokens, root)
    finally:
        try:
            for cluster in plane.http.get("/clusters").json():
                if not cluster["status"].startswith("TERMINATED"):
                    plane.http.post(f"/clusters/{cluster['id']}/terminate")
                    plane.wait(lambda c=cluster: plane.cluster(c["id"])["status"].startswith("TERMINATED"), 300,
                               "terminate after a failure")
        finally:
            plane.stop()


def each(listed: Any) -> list[Any]:
    """A list from Hadoop's REST JSON, which gives a one-element list as the element."""
    return listed if isinstance(listed, list) else [listed]


def spec_file(lab: Lab) -> Path:
    path = lab.work / "cluster.json"
    path.write_text(json.dumps(with_test_jvm_options({
        "name": "lab", "provider": "ssh", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"],
        "node_groups": [{"role": "MASTER", "host_labels": {"role": "master"}},
                        {"role": "CORE", "count": 2, "host_labels": {"rack": "r1"}}]})))
    return path


def add(lab: Lab, host: LabHost, *options: str) -> subprocess.CompletedProcess[str]:
    return lab.corral("admin", "host", "add", host.address, "--name", host.name, "--key", str(lab.key_path),
                      *options, "-o", "json")


def test_hosts_are_checked_and_a_create_needing_more_ready_hosts_than_there_are_is_refused(lab: Lab) -> None:
    master, core1, core2 = lab.hosts[:3]
    wrong = "SHA256:" + "A" * 43
    refused = add(lab, master, "--host-key-fingerprint", wrong)
    assert refused.returncode == 2
    assert f"host_key_fingerprint: the host presents {master.fingerprint()}, not {wrong}" in refused.stderr

    done = add(lab, master, "--host-key-fingerprint", master.fingerprint(), "--label", "role=master",
               "--cores", "1", "--memory", "2g")
    host = json.loads(done.stdout)
    assert done.returncode == 0 and host["status"] == "READY", host["checks"]
    assert (host["cores"], host["memory_mb"], host["host_key_fingerprint"]) == (1, 2048, master.fingerprint())
    assert host["facts"]["java"]["major"] == 17 and host["facts"]["python"]["version"].startswith("3.11.")
    assert host["facts"]["control_plane"]["ok"] and abs(host["facts"]["clock"]["skew_seconds"]) < 1
    # (from the former test_hosts) labels, the pinned key itself, the key held but never shown,
    # and the facts of the host's own machine: its venv, cores, memory and SSH address
    assert (host["labels"], host["has_private_key"]) == ({"role": "master"}, True)
    assert host["host_key"].startswith("ssh-ed25519 ") and host["facts"]["python"]["venv"]
    assert host["facts"]["cores"] == os.cpu_count() and host["facts"]["memory_mb"] > 4096
    assert host["facts"]["ssh_address"] == master.address
    assert "PRIVATE KEY" not in done.stdout
    done = add(lab, core1, "--label", "rack=r1", "--cores", "2", "--memory", "4g")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "READY", done.stdout
    # The first key seen is pinned when no fingerprint is given.
    assert json.loads(done.stdout)["host_key_fingerprint"] == core1.fingerprint()

    core2.hide_java()
    try:
        done = add(lab, core2, "--label", "rack=r1", "--cores", "2", "--memory", "4g")
        host = json.loads(done.stdout)
        assert done.returncode == 1 and host["status"] == "FAILED_CHECK"
        assert [c["message"] for c in host["checks"] if not c["ok"] and c["severity"] == "error"] == [JAVA_FIX]
        checked = lab.corral("admin", "host", "check", core2.name)  # checked again: still no Java, the same fix
        assert checked.returncode == 1 and JAVA_FIX in checked.stdout, checked.stdout + checked.stderr

        refused = lab.corral("operator", "cluster", "create", "-f", str(spec_file(lab)))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert (f"node_groups[1]: CORE needs 2 READY hosts with label rack=r1; 1 matches: {core1.name}; "
                f"not READY: {core2.name} (FAILED_CHECK)") in " ".join(refused.stderr.split())
        assert lab.get("/clusters") == []
        assert [(h["name"], h["status"], h["node_id"]) for h in lab.get("/hosts")] == [
            (master.name, "READY", None), (core1.name, "READY", None), (core2.name, "FAILED_CHECK", None)]
        for host_ in lab.hosts:
            assert host_.user_processes() == [] and host_.run("ls -A /root/.corral-host/nodes 2>/dev/null").stdout == ""
    finally:
        core2.show_java()
    done = lab.corral("admin", "host", "check", core2.name)
    assert done.returncode == 0 and "is READY" in done.stdout, done.stdout + done.stderr


def test_tokens_and_roles_guard_every_call(lab: Lab) -> None:
    plane = lab.plane
    assert httpx.get(plane.url + "/api/v1/clusters").status_code == 401
    assert httpx.post(plane.url + "/api/v1/clusters", json={}).status_code == 401
    assert httpx.get(plane.url + "/api/v1/clusters", headers={"Authorization": "Bearer crl_wrong"}).status_code == 401
    done = lab.corral(None, "cluster", "list")
    assert done.returncode == 2 and "requires a token and none was sent" in done.stderr, done.stderr
    assert lab.corral("viewer", "cluster", "list").returncode == 0
    done = lab.corral("viewer", "cluster", "create", "-f", str(spec_file(lab)))
    assert done.returncode == 2 and "token 'viewer' has the viewer role" in done.stderr, done.stderr
    done = lab.corral("operator", "host", "drain", lab.hosts[0].name)
    assert done.returncode == 2 and "token 'operator' has the operator role" in done.stderr, done.stderr
    assert lab.corral("operator", "audit", "list").returncode == 2
    assert lab.get("/clusters") == [] and lab.get(f"/hosts/{lab.hosts[0].name}")["status"] == "READY"


def test_a_cluster_on_the_hosts_runs_mapreduce_and_spark_on_its_core_hosts(lab: Lab) -> None:
    master, core1, core2 = lab.hosts[:3]
    try:
        created = lab.json("operator", "cluster", "create", "-f", str(spec_file(lab)), timeout=480)
    except subprocess.TimeoutExpired:  # say where it stood: the nodes, the last events, the server's log
        clusters = lab.plane.http.get("/clusters").json()
        detail = [(c["id"], c["status"], [(n["id"], n["status"], n["phase"], n["error"])
                                          for n in lab.plane.cluster(c["id"])["nodes"]],
                   [e["message"] for e in lab.plane.events(c["id"])][-25:]) for c in clusters]
        pytest.fail(f"cluster create still waiting after 480 s: {detail}; server log: "
                    f"{(lab.plane.home / 'server.log').read_text()[-4000:]}")
    lab.cluster_id = cid = created["id"]
    cluster = lab.get(f"/clusters/{cid}")
    assert cluster["status"] == "WAITING", cluster["state_change_reason"]
    assert sorted((n["role"], n["host"], n["address"], n["vcpus"], n["memory_mib"]) for n in cluster["nodes"]) == [
        ("CORE", core1.name, core1.address, 2, 4096), ("CORE", core2.name, core2.address, 2, 4096),
        ("MASTER", master.name, master.address, 1, 2048)]
    assert [(h["name"], h["status"], h["cluster_id"]) for h in lab.get("/hosts")] == [
        (h.name, "ALLOCATED", cid) for h in lab.hosts[:3]]
    # Daemons listen on their node's address only (sshd too). Loopback listeners (a Python
    # worker's, Py4J's) are the host's own. The one wildcard is MapReduce's shuffle in each
    # NodeManager: ShuffleHandler binds every address, with no setting to change it, and
    # serves only requests signed with the job's token (README, "trusted network").
    for host in lab.hosts[:3]:
        wildcard = [line for line in host.run("ss -ltnpH").stdout.splitlines()
                    if line.split()[3].rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]")]
        nodemanager = [p.pid for p in host.processes() if "NodeManager" in p.cmdline and "java" in p.cmdline]
        assert [f"pid={pid}," in line for line in wildcard for pid in nodemanager] == (
            [True] if host is not master else []), wildcard
        named = {a.removeprefix("::ffff:") for a, _ in host.listening_ports()} - {"127.0.0.1", "::1", "0.0.0.0", "*"}
        assert named == {host.address}, host.run("ss -ltnpH").stdout

    uis = cluster["web_uis"]
    assert all(url.startswith(f"http://{master.address}:") for url in uis.values())
    # Hadoop names a node by its address's canonical name: the hosts' /etc/hosts names them.
    nodes = HTTP.get(f"{uis['resourcemanager']}/ws/v1/cluster/nodes").json()["nodes"]["node"]
    assert sorted((n["nodeHostName"], n["state"], n["totalResource"]["memory"]) for n in nodes) == [
        (core1.name, "RUNNING", 3072), (core2.name, "RUNNING", 3072)]  # 4 GiB less the reserve
    core = {core1.name, core2.name}
    names = {h.address: h.name for h in lab.hosts}

    def host_of(host_port: str) -> str:
        host = host_port.rsplit(":", 1)[0]
        return names.get(host, host)

    words = lab.work / "words.txt"
    words.write_text(WORDS)
    assert lab.corral("operator", "fs", cid, "mkdir", "/in").returncode == 0
    assert lab.corral("operator", "fs", cid, "put", str(words), "/in/words.txt").returncode == 0
    listed = lab.json("viewer", "fs", cid, "ls", "/in")
    assert [(e["path"], e["length"]) for e in listed] == [("/in/words.txt", len(WORDS))], listed

    step = lab.json("operator", "step", "add", cid, "-t", "hadoop_jar", "--wait", "hadoop-mapreduce-examples.jar",
                    "wordcount", "/in/words.txt", "/out")
    assert step["status"] == "COMPLETED", step
    counted = lab.corral("viewer", "fs", cid, "cat", "/out/part-r-00000")
    assert counted.returncode == 0 and counted.stdout == "".join(f"{w}\t{n}\n" for w, n in EXPECTED_COUNTS.items())
    history = uis["jobhistory"] + "/ws/v1/history/mapreduce/jobs"
    (job,) = [j for j in each(HTTP.get(history).json()["jobs"]["job"]) if j["name"] == "word count"]
    tasks = each(HTTP.get(f"{history}/{job['id']}/tasks").json()["tasks"]["task"])
    attempts = [a for t in tasks for a in each(HTTP.get(f"{history}/{job['id']}/tasks/{t['id']}/attempts")
                                               .json()["taskAttempts"]["taskAttempt"])]
    assert {t["type"] for t in tasks} == {"MAP", "REDUCE"}
    assert attempts and {host_of(a["nodeHttpAddress"]) for a in attempts} <= core, attempts
    apps = each(HTTP.get(f"{uis['resourcemanager']}/ws/v1/cluster/apps").json()["apps"]["app"])
    am_hosts = {host_of(a["amHostHttpAddress"]) for a in apps}
    assert am_hosts <= core, apps  # the SQL endpoint's and the job's application masters

    job_file = lab.work / "words.py"
    job_file.write_text(SPARK_JOB)
    step = lab.json("operator", "step", "add", cid, "-t", "spark", "--wait", str(job_file))
    assert step["status"] == "COMPLETED", step
    log = lab.corral("viewer", "step", "logs", cid, step["id"]).stdout.strip().splitlines()
    assert log[:-1] == [f"{w}={n}" for w, n in EXPECTED_COUNTS.items()]
    app = log[-1].removeprefix("app=")
    executors = HTTP.get(f"{uis['spark-history-server']}/api/v1/applications/{app}/allexecutors").json()
    assert {host_of(e["hostPort"]) for e in executors if e["id"] != "driver"} <= core
    assert [e for e in executors if e["id"] != "driver"], executors

    rows = lab.json("viewer", "sql", cid, "-e", "SELECT word, n FROM words ORDER BY word")
    assert rows == [{"word": w, "n": n} for w, n in EXPECTED_COUNTS.items()]


def test_secrets_appear_in_no_answer_output_or_log(lab: Lab) -> None:
    """The SSH private key and every API token: not in what users saw, not in the control
    plane's home (log, store, files), not in what the hosts keep (agent and daemon logs,
    node directories, /tmp)."""
    cid = lab.cluster_id
    audit = lab.json("admin", "audit", "list")
    lab.seen += [json.dumps(lab.get(p)) for p in ("/hosts", "/tokens", f"/clusters/{cid}", f"/clusters/{cid}/events")]
    key_lines = [line for line in lab.key_path.read_text().splitlines() if line and "PRIVATE KEY" not in line]
    secrets = {"key line": key_lines[1], **{f"{role} token": token for role, token in lab.tokens.items()}}
    places = {f"output {i}": text for i, text in enumerate(lab.seen)}
    files = [p for p in lab.plane.home.rglob("*") if p.is_file()]
    for host in lab.hosts:
        for top in ("/root", "/tmp"):
            files += [p for p in host.path(top).rglob("*") if p.is_file() and not p.is_symlink()
                      and p.stat().st_size < 64 << 20 and "cache" not in p.parts]
    for path in files:
        places[str(path)] = path.read_bytes().decode("latin-1")
    assert len(files) > 50
    leaks = [(what, where) for where, text in places.items() for what, secret in secrets.items() if secret in text]
    assert leaks == []

    calls = {(r["actor"], r["action"], r["result"]) for r in audit}
    assert {("admin", "host.add", "ok"), ("admin", "host.add", "failed"), ("operator", "cluster.create", "failed"),
            ("viewer", "cluster.create", "denied"), ("anonymous", "cluster.create", "denied"),
            ("operator", "host.drain", "denied"), ("operator", "cluster.create", "ok"),
            ("operator", "step.add", "ok")} <= calls, sorted(calls)
    created = next(r for r in audit if r["action"] == "cluster.create" and r["result"] == "ok")
    assert created["target"] == cid and created["status_code"] in (200, 201)


def test_a_killed_agent_a_lost_link_and_a_reboot_are_repaired(lab: Lab) -> None:
    plane, cid, worker = lab.plane, lab.cluster_id, lab.hosts[1]
    core = next(n for n in plane.cluster(cid)["nodes"] if n["host"] == worker.name)

    def codes() -> list[tuple[str, str | None]]:
        return [(e["code"], e.get("node_id")) for e in plane.events(cid)]

    # kill -9 of the agent: restarted over SSH.
    worker.run("pkill -KILL -f 'corral.agent --config'")
    plane.wait(lambda: ("AGENT_RESTARTED", core["id"]) in codes(), 120, "the agent's restart")

    # The host's link down: its node is LOST with the reason; up: re-attached.
    worker.link_down()
    lost = plane.wait(lambda: next((n for n in plane.cluster(cid)["nodes"]
                                    if n["id"] == core["id"] and n["status"] == "LOST"), None), 180, "LOST")
    assert f"host {worker.name} ({worker.address}) unreachable over SSH since" in lost["status_reason"]
    assert ("NODE_LOST", core["id"]) in codes()
    assert plane.cluster(cid)["status"] == "WAITING"
    worker.link_up()
    plane.wait(lambda: ("NODE_RECOVERED", core["id"]) in codes(), 180, "the node's recovery")
    plane.wait(lambda: plane.cluster(cid)["status"] == "WAITING"
               and all(n["status"] == "RUNNING" for n in plane.cluster(cid)["nodes"]), 180, "all RUNNING")

    # A reboot: cron's @reboot line brings the agent back, which restarts its daemons.
    worker.reboot()
    plane.wait(lambda: any("corral.agent" in p.cmdline for p in worker.processes()), 120, "the agent after reboot")
    plane.wait(lambda: any("NodeManager" in p.cmdline for p in worker.processes()), 180, "the NodeManager after reboot")


def test_a_task_group_takes_a_ready_host_and_gives_it_back_clean(lab: Lab) -> None:
    """Growing needs READY hosts that match: refused up front naming what matched; a TASK
    group added with a label takes the host that carries it, and its removal (a graceful
    scale-in to zero) gives the host back READY with nothing of the node left on it."""
    plane, cid, spare = lab.plane, lab.cluster_id, lab.hosts[3]
    refused = lab.corral("operator", "group", "add", cid, "--instance-type", "host", "--count", "1",
                         "--label", "pool=task")
    assert refused.returncode == 2 and "TASK needs 1 more READY host with label pool=task; none match" in \
        " ".join(refused.stderr.split()), refused.stdout + refused.stderr
    refused = lab.corral("operator", "cluster", "resize", cid, "--group", "CORE", "--count", "3")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("CORE needs 1 more READY host with label rack=r1; none match; not READY: "
            f"{lab.hosts[1].name} (ALLOCATED, cluster {cid})") in " ".join(refused.stderr.split()), refused.stderr
    assert [g["name"] for g in lab.get(f"/clusters/{cid}/node-groups")] == ["MASTER", "CORE"]
    done = add(lab, spare, "--label", "pool=task", "--cores", "2", "--memory", "4g")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "READY", done.stdout
    added = lab.json("operator", "group", "add", cid, "--instance-type", "host", "--count", "1", "--label",
                     "pool=task", "--wait")
    assert (added["name"], added["running_count"]) == ("TASK", 1), added
    (node,) = [n for n in lab.get(f"/clusters/{cid}")["nodes"] if n["group"] == "TASK"]
    assert (node["host"], node["address"], node["status"], node["vcpus"], node["memory_mib"]) == (
        spare.name, spare.address, "RUNNING", 2, 4096)
    assert lab.get(f"/hosts/{spare.name}")["node_id"] == node["id"]
    rm = lab.get(f"/clusters/{cid}")["web_uis"]["resourcemanager"]
    rm_nodes = each(HTTP.get(f"{rm}/ws/v1/cluster/nodes").json()["nodes"]["node"])
    assert [n["state"] for n in rm_nodes if n["nodeHostName"] == spare.name] == ["RUNNING"]  # its /etc/hosts name
    removed = lab.corral("operator", "group", "remove", cid, "TASK", "--wait")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    host = plane.wait(lambda: (h := lab.get(f"/hosts/{spare.name}"))["status"] == "READY" and h, 120, "the host back")
    assert host["node_id"] is None and spare.user_processes() == [], spare.user_processes()
    assert spare.run("ls -A /root/.corral-host/nodes 2>/dev/null").stdout.strip() == ""
    assert "corral-node" not in spare.run("crontab -l 2>/dev/null").stdout
    assert lab.corral("admin", "host", "remove", spare.name).returncode == 0


def test_terminate_leaves_every_host_clean(lab: Lab) -> None:
    done = lab.corral("operator", "cluster", "terminate", lab.cluster_id, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.get(f"/clusters/{lab.cluster_id}")["status"] == "TERMINATED"
    for host in lab.hosts[:3]:  # the 4th left with its TASK group
        got = lab.plane.wait(lambda h=host: (x := lab.get(f"/hosts/{h.name}"))["status"] == "READY" and x, 60,
                             f"{host.name} released")
        assert got["node_id"] is None
        assert host.user_processes() == [], host.user_processes()
        assert [port for _, port in host.listening_ports()] == [22]
        assert host.run("ls -A /root/.corral-host/nodes 2>/dev/null").stdout.strip() == ""
        assert "corral-node" not in host.run("crontab -l 2>/dev/null").stdout
        assert host.run("ls /root/.corral-host/cache").stdout.strip() != ""  # the runtime cache stays


def test_a_changed_host_key_is_refused_and_the_host_marked(lab: Lab) -> None:
    host = lab.hosts[2]
    pinned = lab.get(f"/hosts/{host.name}")["host_key_fingerprint"]
    host.regenerate_host_key()
    done = lab.corral("admin", "host", "check", host.name)
    assert done.returncode == 1 and "HOST_KEY_CHANGED" in done.stdout, done.stdout + done.stderr
    described = lab.get(f"/hosts/{host.name}")
    assert described["status"] == "HOST_KEY_CHANGED" and described["host_key_fingerprint"] == pinned
    assert described["status_reason"].startswith(f"host key changed: pinned {pinned}")
    assert (f"now {host.fingerprint()}; if the host was reinstalled, remove and add it again"
            in described["status_reason"]), described["status_reason"]
    refused = lab.corral("operator", "cluster", "create", "-f", str(spec_file(lab)))
    assert refused.returncode == 2 and f"{host.name} (HOST_KEY_CHANGED)" in " ".join(refused.stderr.split()), refused.stderr
    done = lab.corral("admin", "host", "remove", host.name)
    assert done.returncode == 0 and "removed" in done.stdout
    assert [h["name"] for h in lab.get("/hosts")] == [h.name for h in lab.hosts[:2]]
    # (from the former test_hosts) drain; the list hides removed hosts, --all shows them; a
    # removed host added again is READY with the key it presents now
    drained = lab.json("admin", "host", "drain", lab.hosts[1].name)
    assert drained["status"] == "DRAINED", drained
    listed = lab.json("admin", "host", "list")
    assert [(h["name"], h["status"]) for h in listed] == [(lab.hosts[0].name, "READY"), (lab.hosts[1].name, "DRAINED")]
    everything = lab.json("admin", "host", "list", "--all")
    assert sorted(h["status"] for h in everything) == ["DRAINED", "READY", "REMOVED", "REMOVED"], everything
    done = add(lab, host, "--cores", "2", "--memory", "4g")
    again = json.loads(done.stdout)
    assert done.returncode == 0 and again["status"] == "READY", done.stdout + done.stderr
    assert again["host_key_fingerprint"] == host.fingerprint() != pinned
