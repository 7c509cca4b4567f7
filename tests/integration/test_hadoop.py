"""A real Hadoop + Spark cluster (HDFS, YARN, MapReduce, Spark on YARN; Hadoop 3.5.0 from
Maven Central): readiness, MapReduce, Streaming and Spark steps, cancel, faults, and a
clean terminate. Tests run in file order on one shared cluster; the last one ends it."""

from __future__ import annotations

import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.conftest import (HTTP, ISSUE10_HADOOP_VALUE, WAIT_STEP_TIMEOUT, ControlPlaneProcess,
                                        class_data_archive_use, cluster_processes, jvm_main_class, listening_on)
from tests.integration.links import HADOOP_NAMES_THE_HOST, LinkCheck, urls_in

pytestmark = pytest.mark.integration

MR_TIMEOUT = 300


def _shell(cp: ControlPlaneProcess, cluster_id: str, command: str, timeout: float = 120) -> str:
    step = cp.wait_step(cluster_id, cp.add_step(cluster_id, "SHELL", [command])["id"], timeout=timeout)
    assert step["status"] == "COMPLETED", (step, cp.log(cluster_id, step["id"], "stderr")[-2000:])
    return cp.log(cluster_id, step["id"])


def _run(cp: ControlPlaneProcess, cluster_id: str, type_: str, args: list[str], timeout: float = MR_TIMEOUT) -> dict[str, Any]:
    step = cp.wait_step(cluster_id, cp.add_step(cluster_id, type_, args)["id"], timeout=timeout)
    assert step["status"] == "COMPLETED", (step, cp.log(cluster_id, step["id"], "stderr")[-3000:])
    return step


def _daemon(cluster_id: str, node_id: str, main_class: str) -> psutil.Process:
    for proc in cluster_processes(cluster_id):
        try:
            if proc.environ().get("CORRAL_NODE_ID") == node_id and main_class in proc.cmdline():
                return proc
        except psutil.Error:
            continue
    raise AssertionError(f"no {main_class} on {node_id}")


def _core_nodes(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in cluster["nodes"] if n["role"] == "CORE"]


def _yarn_app(cluster: dict[str, Any], app_id: str) -> dict[str, Any]:
    return HTTP.get(f"{cluster['web_uis']['resourcemanager']}/ws/v1/cluster/apps/{app_id}", timeout=5).json()["app"]


def test_ready_means_every_daemon_is_registered_and_every_ui_answers(shared_cp: ControlPlaneProcess,
                                                                      hadoop_cluster: dict[str, Any]) -> None:
    cluster = shared_cp.cluster(hadoop_cluster["id"])
    uis = cluster["web_uis"]
    assert set(uis) == {"namenode", "resourcemanager", "jobhistory", "spark-history-server"}
    master = cluster["master_address"]
    assert all(url.startswith(f"http://{master}:") for url in uis.values())
    info = HTTP.get(f"{uis['namenode']}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo", timeout=5).json()["beans"][0]
    assert info["Safemode"] == ""
    import json

    live = {name.split(":")[0] for name in json.loads(info["LiveNodes"])}
    assert live == {n["address"] for n in _core_nodes(cluster)}  # each DataNode seen at its own address
    nodes = HTTP.get(f"{uis['resourcemanager']}/ws/v1/cluster/nodes", timeout=5).json()["nodes"]["node"]
    assert {n["nodeHostName"] for n in nodes if n["state"] == "RUNNING"} == live
    assert {n["totalResource"]["memory"] for n in nodes} == {3072}  # local.medium: 4 GiB less the reserve
    for path in (uis["namenode"] + "/dfshealth.html", uis["resourcemanager"] + "/cluster",
                 uis["jobhistory"] + "/jobhistory", uis["spark-history-server"] + "/api/v1/version"):
        assert HTTP.get(path, timeout=10, follow_redirects=True).status_code == 200, path
    configs = {c["classification"]: c for c in shared_cp.http.get(f"/clusters/{cluster['id']}/configurations").json()}
    assert configs["hdfs-site"]["properties"]["dfs.replication"] == "2"
    assert configs["spark-defaults"]["properties"]["spark.master"] == "yarn"
    # Every Hadoop daemon, started by Corral's launcher, maps the host's Hadoop class-data archive.
    daemons = {"NameNode", "DataNode", "ResourceManager", "NodeManager", "JobHistoryServer"}
    assert class_data_archive_use(cluster["id"], daemons, archive="hadoop") == dict.fromkeys(daemons, True)


def test_shell_steps_have_the_hadoop_tools(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any]) -> None:
    out = _shell(shared_cp, hadoop_cluster["id"], "hadoop version | head -1; yarn node -list 2>/dev/null | head -1; "
                                                  "mapred job -list 2>/dev/null | head -1; hdfs getconf -confKey dfs.replication")
    assert "Hadoop 3.5.0" in out
    assert "Total Nodes:2" in out
    assert "Total jobs:" in out
    assert out.strip().splitlines()[-1] == "2"


def test_steps_daemons_and_containers_run_as_one_os_user_named_hadoop_in_hdfs(
        shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any]) -> None:
    cid = hadoop_cluster["id"]
    out = _shell(shared_cp, cid, 'id -u; echo "$HADOOP_USER_NAME"; echo x | hdfs dfs -put -f - /whoami.txt; '
                                 "hdfs dfs -stat %u /whoami.txt")
    uid, hadoop_name, owner = out.strip().splitlines()[-3:]
    assert int(uid) == os.getuid()  # the agent's user: the one running the control plane here
    assert hadoop_name == owner == "hadoop"
    daemons = [p for p in cluster_processes(cid) if jvm_main_class(p)]
    assert daemons and {p.uids().real for p in daemons} == {os.getuid()}
    warned = any(e["code"] == "NODE_RUNS_AS_ROOT" for e in shared_cp.events(cid))
    assert warned == (os.getuid() == 0)


def test_configuration_values_reach_hadoops_configuration_exactly(shared_cp: ControlPlaneProcess,
                                                                 hadoop_cluster: dict[str, Any]) -> None:
    """Issue 10: core-site is Hadoop XML (a CR stays a CR; `&`, `<`, non-ASCII; Hadoop
    leaves an unknown ${var} as it is); hadoop-env is shell, sourced by the launcher: its
    "$HADOOP_OPTS -D..." works although HADOOP_OPTS was unset, and Hadoop expands the
    system property it sets. `hdfs getconf` prints Configuration's (trimmed) value."""
    out = _shell(shared_cp, hadoop_cluster["id"], "export HADOOP_CLIENT_OPTS=-Dfile.encoding=UTF-8; "
                 "hdfs getconf -confKey corral.test.value; hdfs getconf -confKey corral.test.expanded")
    assert out == f"{ISSUE10_HADOOP_VALUE}\nfrom-hadoop-env\n"


def test_terasort_100mb_as_hadoop_jar_steps(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any]) -> None:
    cid = hadoop_cluster["id"]
    examples = "hadoop-mapreduce-examples.jar"
    gen = _run(shared_cp, cid, "HADOOP_JAR", [examples, "teragen", "1000000", "/tera/in"])
    _run(shared_cp, cid, "HADOOP_JAR", [examples, "terasort", "/tera/in", "/tera/out"])
    _run(shared_cp, cid, "HADOOP_JAR", [examples, "teravalidate", "/tera/out", "/tera/report"])
    out = _shell(shared_cp, cid, "hdfs dfs -du -s /tera/in; hdfs dfs -cat /tera/report/part-r-*")
    assert out.splitlines()[0].split()[0] == str(100_000_000)  # 1,000,000 rows of 100 bytes
    assert "checksum" in out and "error" not in out.lower()  # teravalidate writes errors when misordered
    assert gen["yarn_application_ids"] and gen["yarn_application_ids"][0].startswith("application_")
    assert _yarn_app(hadoop_cluster, gen["yarn_application_ids"][0])["finalStatus"] == "SUCCEEDED"


def test_streaming_word_count_with_python_scripts(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any],
                                                  tmp_path: Path) -> None:
    cid = hadoop_cluster["id"]
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(5000)]
    expected = collections.Counter(w for line in lines for w in line.split())
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "mapper.py").write_text(
        "import sys\nfor line in sys.stdin:\n    for w in line.split():\n        print(f'{w}\\t1')\n")
    (tmp_path / "reducer.py").write_text(
        "import sys\nfrom itertools import groupby\n"
        "pairs = (l.rstrip('\\n').split('\\t') for l in sys.stdin)\n"
        "for word, group in groupby(pairs, key=lambda p: p[0]):\n"
        "    print(f'{word}\\t{sum(int(c) for _, c in group)}')\n")
    _shell(shared_cp, cid, f"hdfs dfs -mkdir -p /wc && hdfs dfs -put -f {tmp_path / 'in.txt'} /wc/in.txt")
    _run(shared_cp, cid, "STREAMING", ["-D", "mapreduce.job.reduces=2", "-mapper", str(tmp_path / "mapper.py"),
                                       "-reducer", str(tmp_path / "reducer.py"), "-input", "/wc/in.txt", "-output", "/wc/out"])
    out = _shell(shared_cp, cid, "hdfs dfs -cat /wc/out/part-*")
    counts = {word: int(n) for word, n in (line.split("\t") for line in out.strip().splitlines())}
    assert counts == dict(expected)


def test_pyspark_on_yarn_writes_parquet_to_hdfs_and_reads_it_back(shared_cp: ControlPlaneProcess,
                                                                   hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    cid = hadoop_cluster["id"]
    lines = [f"line {i} of the input" for i in range(12345)]
    (tmp_path / "text.txt").write_text("\n".join(lines) + "\n")
    _shell(shared_cp, cid, f"hdfs dfs -mkdir -p /pq && hdfs dfs -put -f {tmp_path / 'text.txt'} /pq/text.txt")
    writer = tmp_path / "to_parquet.py"
    writer.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('to-parquet').getOrCreate()\n"
        "df = spark.read.text('/pq/text.txt')\n"
        "df.write.mode('overwrite').parquet('/pq/lines.parquet')\n"
        "print('wrote', df.count())\n")
    reader = tmp_path / "count_parquet.py"
    reader.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('count-parquet').getOrCreate()\n"
        "df = spark.read.parquet('/pq/lines.parquet')\n"
        "print('rows', df.count(), 'distinct', df.distinct().count())\n")
    first = _run(shared_cp, cid, "SPARK", [str(writer)])
    _run(shared_cp, cid, "SPARK", ["--deploy-mode", "cluster", str(reader)])  # the driver runs in YARN
    assert "wrote 12345" in shared_cp.log(cid, first["id"])
    app = _yarn_app(hadoop_cluster, first["yarn_application_ids"][0])
    assert app["applicationType"] == "SPARK" and app["finalStatus"] == "SUCCEEDED"
    second = shared_cp.steps(cid)[-1]
    # The driver's stdout is in its container's log, aggregated to HDFS once the app ends.
    command = f"yarn logs -applicationId {second['yarn_application_ids'][0]} -log_files stdout 2>/dev/null"
    shared_cp.wait_for(lambda: "rows 12345 distinct 12345" in _shell(shared_cp, cid, command), 60,
                       "the driver's output in the aggregated YARN logs")


def _cli_step_add(cp: ControlPlaneProcess, cluster_id: str, type_: str, args: list[str], cwd: Path) -> dict[str, Any]:
    """``corral step add`` as a user runs it: the CLI uploads the step's local files."""
    result = subprocess.run([sys.executable, "-m", "corral.cli.main", "step", "add", cluster_id, "--type", type_,
                             "-o", "json", "--", *args], env=cp.env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))


def _zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)


def test_local_files_with_aliases_are_shipped_with_a_spark_step(shared_cp: ControlPlaneProcess,
                                                                 hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """Issue 10 §3's input: ``--files /local/lookup.txt#lookup.txt --archives
    /local/deps.zip#depsdir``. The local files are deleted as soon as ``step add`` returns,
    so only the shipped copies can serve; the driver (in YARN: cluster mode) and the
    executors read both through their aliases."""
    cid = hadoop_cluster["id"]
    local = tmp_path / "tmp-dir"
    local.mkdir()
    lookup, data = "alpha\t1\nbeta # not a comment\t2\n", "from the archive: ü\n"
    (local / "lookup.txt").write_text(lookup)
    _zip(local / "deps.zip", {"data.txt": data})
    (local / "job.py").write_text(
        "import json\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('shipped-files').getOrCreate()\n"
        "def read(_):\n"
        "    return [open('lookup.txt', encoding='utf-8').read(), open('depsdir/data.txt', encoding='utf-8').read()]\n"
        "result = {'driver': read(0), 'executors': spark.sparkContext.parallelize(range(4), 4).map(read).collect()}\n"
        "spark.createDataFrame([(json.dumps(result),)], ['v']).coalesce(1).write.mode('overwrite').text('/ship/spark')\n")
    step = _cli_step_add(shared_cp, cid, "spark", ["--deploy-mode", "cluster", "--files", f"{local}/lookup.txt#lookup.txt",
                                                   "--archives", f"{local}/deps.zip#depsdir", "job.py"], cwd=local)
    shutil.rmtree(local)
    assert step["args"][-1] == f"{local}/job.py"  # made absolute by the CLI, where the file was
    assert set(step["files"]) == {f"{local}/lookup.txt", f"{local}/deps.zip", f"{local}/job.py"}
    done = shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)
    assert done["status"] == "COMPLETED", (done, shared_cp.log(cid, step["id"], "stderr")[-3000:])
    result = json.loads(_shell(shared_cp, cid, "hdfs dfs -cat /ship/spark/part-*"))
    assert result == {"driver": [lookup, data], "executors": [[lookup, data]] * 4}


def test_local_files_with_aliases_are_shipped_with_a_streaming_step(shared_cp: ControlPlaneProcess,
                                                                     hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """The same for Hadoop's generic options: ``-files x#alias -archives y#alias``, given
    after the streaming options (Corral moves them first), read by every map task."""
    cid = hadoop_cluster["id"]
    local = tmp_path / "tmp-dir"
    local.mkdir()
    (local / "stop.txt").write_text("the\nand\n")
    _zip(local / "env.zip", {"data.txt": "zipped\n"})
    (local / "mapper.py").write_text("import sys\nif sys.stdin.read():  # the map task that has the line\n"
                                     "    print(open('stopwords').read() + open('env/data.txt').read(), end='')\n")
    _shell(shared_cp, cid, "printf 'one\\n' | hdfs dfs -put -f - /ship-one.txt")
    step = _cli_step_add(shared_cp, cid, "streaming", [
        "-D", "mapreduce.job.reduces=0", "-input", "/ship-one.txt", "-output", "/ship/streaming",
        "-mapper", f"{local}/mapper.py", "-files", f"{local}/stop.txt#stopwords", "-archives", "env.zip#env"],
        cwd=local)
    shutil.rmtree(local)
    done = shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)
    assert done["status"] == "COMPLETED", (done, shared_cp.log(cid, step["id"], "stderr")[-3000:])
    out = _shell(shared_cp, cid, "hdfs dfs -cat /ship/streaming/part-*")
    assert [line.rstrip("\t") for line in out.splitlines()] == ["the", "and", "zipped"]


def _app(cluster: dict[str, Any], app_id: str, **extra: Any) -> dict[str, Any]:
    return HTTP.get(f"{cluster['web_uis']['resourcemanager']}/ws/v1/cluster/apps/{app_id}{extra.get('path', '')}",
                    timeout=10).json()


def _as_list(value: Any) -> list[Any]:
    """Hadoop's JSON writes a one-element list as the element itself (in some APIs)."""
    return value if isinstance(value, list) else [value]


def _check_application_links(links: LinkCheck, cluster: dict[str, Any], app_id: str, what: str,
                             retry_for: float = 0.0) -> dict[str, Any]:
    """The ResourceManager's links for an application: its tracking URL (through the web
    proxy), its AM container's logs, each attempt's logs and node, and its page's links."""
    rm = cluster["web_uis"]["resourcemanager"]
    app = _app(cluster, app_id)["app"]
    links.visit(app["trackingUrl"], f"trackingUrl of {what}", retry_for)
    links.visit(app["amContainerLogs"], f"amContainerLogs of {what}", retry_for)
    for attempt in _as_list(_app(cluster, app_id, path="/appattempts")["appAttempts"]["appAttempt"]):
        links.visit(attempt["logsLink"], f"an attempt's logsLink of {what}", retry_for)
        links.visit(f"http://{attempt['nodeHttpAddress']}", f"an attempt's nodeHttpAddress of {what}")
    links.visit_page_links(f"{rm}/cluster/app/{app_id}", f"the ResourceManager's page of {what}", HADOOP_NAMES_THE_HOST,
                           retry_for)
    return app


def test_every_link_the_cluster_hands_out_answers(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any],
                                                  tmp_path: Path) -> None:
    """Tracking and proxy URLs, history links, container log links, DataNode and NodeManager
    addresses and the web UIs, from the daemons' REST APIs, pages and CLIs, while a Spark
    step runs and after it and a MapReduce job ended: each answers at a node's address."""
    cid = hadoop_cluster["id"]
    cluster = shared_cp.cluster(cid)
    uis = cluster["web_uis"]
    links = LinkCheck({n["address"] for n in cluster["nodes"]})
    try:
        mr = _run(shared_cp, cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "teragen", "-Dmapreduce.job.maps=1",
                                                "10000", "/links/tera"])
        stop = tmp_path / "stop"
        app = tmp_path / "until_stopped.py"
        app.write_text(
            "import os, time\nfrom pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.appName('until-stopped').getOrCreate()\n"
            "deadline = time.time() + 240\n"
            f"while not os.path.exists({str(stop)!r}) and time.time() < deadline:\n"
            "    spark.sparkContext.parallelize(range(4), 2).map(lambda x: x * 2).collect()\n"
            "    time.sleep(1)\n")
        step = shared_cp.add_step(cid, "SPARK", [str(app)])
        spark_app = shared_cp.wait_for(lambda: shared_cp.step(cid, step["id"])["yarn_application_ids"], 120,
                                       "the Spark application's id")[0]
        running = shared_cp.wait_for(lambda: (a := _app(cluster, spark_app)["app"])["state"] == "RUNNING"
                                     and a.get("trackingUrl") and a, 120, "the Spark application to run")
        # While it runs: the proxied driver UI, and the executors' log links it shows.
        executors_url = f"{running['trackingUrl']}api/v1/applications/{spark_app}/executors"
        answers: list[httpx.Response] = []

        def executors() -> list[dict[str, Any]]:
            answers[:] = [HTTP.get(executors_url, follow_redirects=True, timeout=10)]
            # (Until the driver's UI has attached its pages it answers "Spark is starting up".)
            if answers[0].status_code != 200 or not answers[0].text.startswith("["):
                return []
            return [e for e in answers[0].json() if e["id"] != "driver"]

        try:
            found = shared_cp.wait_for(executors, 120, "the executors")
        except AssertionError:
            raise AssertionError(f"{executors_url}: {answers[0].status_code} {answers[0].text[:500]}") from None
        _check_application_links(links, cluster, spark_app, "a running Spark application")
        for executor in found:
            for name, url in executor["executorLogs"].items():
                links.visit(url, f"executor {executor['id']}'s {name} link in the running driver's UI")
        # The driver's own UI address, which it gives YARN as the tracking URL to proxy.
        environment = HTTP.get(executors_url.replace("/executors", "/environment"), follow_redirects=True, timeout=10)
        ui = dict(environment.json()["sparkProperties"])["spark.driver.appUIAddress"]
        links.visit(ui, "the driver's web UI address")
        # (A SHELL step would wait for the Spark step: the master's own `yarn` tool, directly.)
        master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
        yarn = shared_cp.home / "nodes" / cid / master["id"] / "bin" / "yarn"
        status = subprocess.run([str(yarn), "application", "-status", spark_app], capture_output=True, text=True,
                                timeout=120).stdout
        assert "Tracking-URL" in status, status
        for url in urls_in(status):
            links.visit(url, "yarn application -status of a running Spark application")
        stop.touch()
        assert shared_cp.wait_step(cid, step["id"])["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]

        # Once ended: links to the history servers and to the aggregated logs.
        _check_application_links(links, cluster, spark_app, "a finished Spark application", retry_for=60)
        history = HTTP.get(f"{uis['spark-history-server']}/api/v1/applications/{spark_app}/allexecutors", timeout=10)
        assert history.status_code == 200, history.text
        for executor in history.json():
            for name, url in executor["executorLogs"].items():
                links.visit(url, f"executor {executor['id']}'s {name} link in the Spark History Server", retry_for=60)
        mr_app = mr["yarn_application_ids"][0]
        _check_application_links(links, cluster, mr_app, "a finished MapReduce job", retry_for=60)
        job = mr_app.replace("application_", "job_")
        for attempt in _as_list(HTTP.get(f"{uis['jobhistory']}/ws/v1/history/mapreduce/jobs/{job}/jobattempts",
                                         timeout=10, headers={"Accept": "application/json"}).json()["jobAttempts"]["jobAttempt"]):
            links.visit(attempt["logsLink"], "a job attempt's logsLink in the JobHistory Server", retry_for=60)
            links.visit(f"http://{attempt['nodeHttpAddress']}", "a job attempt's node in the JobHistory Server")
        links.visit_page_links(f"{uis['jobhistory']}/jobhistory/job/{job}", "the JobHistory Server's job page")
        # (`yarn application -status` of a finished MapReduce job prints the URL its AM computed
        # in the same way as HADOOP_NAMES_THE_HOST's: MRWebAppUtil.getApplicationWebURLOnJHS,
        # the JobHistory Server by the AM's host name. Browsers get there through the proxy.)

        # The NodeManagers and DataNodes the masters name, and the web UIs Corral names.
        for nm in HTTP.get(f"{uis['resourcemanager']}/ws/v1/cluster/nodes", timeout=10).json()["nodes"]["node"]:
            links.visit(f"http://{nm['nodeHTTPAddress']}", "a NodeManager's nodeHTTPAddress")
        info = HTTP.get(f"{uis['namenode']}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo", timeout=10).json()
        for name, dn in json.loads(info["beans"][0]["LiveNodes"]).items():
            links.visit(f"http://{dn['infoAddr']}", "a DataNode's infoAddr in the NameNode's JMX")
            # The NameNode UI's link (dfshealth.js: the node's name with infoAddr's port).
            links.visit(f"http://{name.split(':')[0]}:{dn['infoAddr'].rsplit(':', 1)[1]}", "the NameNode UI's DataNode link")
        for name, url in uis.items():
            links.visit_page_links(url, f"the {name} web UI")
        for name in ("namenode", "resourcemanager", "jobhistory"):  # their menus' "Logs" / "Local logs"
            links.visit(f"{uis[name]}/logs/", f"the {name} web UI's logs link")
    finally:
        links.close()
    assert not links.failures, "\n".join(links.failures)
    assert len(links.checked) > 20, links.checked


def test_cancelling_a_hadoop_jar_step_kills_its_yarn_application(shared_cp: ControlPlaneProcess,
                                                                  hadoop_cluster: dict[str, Any]) -> None:
    cid = hadoop_cluster["id"]
    step = shared_cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "teragen", "200000000", "/tera/huge"])
    apps = shared_cp.wait_for(lambda: shared_cp.step(cid, step["id"])["yarn_application_ids"], 60, "the application id")
    shared_cp.http.post(f"/clusters/{cid}/steps/{step['id']}/cancel")
    assert shared_cp.wait_step(cid, step["id"], timeout=60)["status"] == "CANCELLED"
    shared_cp.wait_for(lambda: _yarn_app(hadoop_cluster, apps[0])["state"] == "KILLED", 30, "the application to be KILLED")


def _cli(cp: ControlPlaneProcess, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=cp.env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _jvm_mib_for(container_mib: int) -> int:
    """The largest Spark JVM memory whose container (plus Spark's overhead, max(384 MiB,
    10 %)) is at most ``container_mib``."""
    return next(m for m in range(container_mib, 0, -1) if m + max(384, m // 10) <= container_mib)


def _ended_by_timeout(cp: ControlPlaneProcess, cluster: dict[str, Any], step: dict[str, Any], timeout: int,
                      waiting: str) -> None:
    """The step ends FAILED with reason TIMEOUT, saying what it waited for, about its
    timeout after its start, and every YARN application it submitted is KILLED."""
    done = cp.wait_step(cluster["id"], step["id"], timeout=timeout + 90)
    assert (done["status"], done["failure_code"]) == ("FAILED", "TIMEOUT"), done
    assert done["state_message"].startswith(f"TIMEOUT: the step ran longer than its timeout of {timeout} s"), done
    assert f"it was {waiting}" in done["state_message"], done
    started = datetime.fromisoformat(done["started_at"])
    assert timeout <= (datetime.fromisoformat(done["ended_at"]) - started).total_seconds() < timeout + 45, done
    for app in done["yarn_application_ids"]:
        cp.wait_for(lambda app=app: _yarn_app(cluster, app)["state"] == "KILLED", 30, f"{app} to be KILLED")


def test_a_spark_step_whose_executors_never_fit_says_so_and_is_ended_by_its_timeout(
        shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """One executor as large as a whole NodeManager per NodeManager, and the driver waits
    for all of them: one NodeManager also holds the ApplicationMaster, so the last executor
    never fits (issue 10: "Initial job has not accepted any resources", for ever)."""
    cid = hadoop_cluster["id"]
    rm = hadoop_cluster["web_uis"]["resourcemanager"]
    nodes = HTTP.get(f"{rm}/ws/v1/cluster/nodes", timeout=5).json()["nodes"]["node"]
    nm_mib = min(n["totalResource"]["memory"] for n in nodes)
    app = tmp_path / "sum.py"
    app.write_text("from pyspark.sql import SparkSession\n"
                   "spark = SparkSession.builder.appName('never-fits').getOrCreate()\n"
                   "print('sum', spark.sparkContext.parallelize(range(100), 4).sum())\n")
    timeout = WAIT_STEP_TIMEOUT
    step = shared_cp.add_step(cid, "SPARK", [
        "--num-executors", str(len(nodes)), "--executor-memory", f"{_jvm_mib_for(nm_mib)}m",
        "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
        "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=3600s", str(app)], timeout=timeout)
    expected = re.compile(rf"^waiting for YARN: 1 container of {nm_mib} MB, \d+ vcores? requested, not granted for "
                          rf"\d+ s \(largest free on a NodeManager: \d+ MB, \d+ vcores?\)$")
    waiting = shared_cp.wait_for(lambda: (m := shared_cp.step(cid, step["id"])["state_message"] or "")
                                 and expected.match(m) and m, timeout, "the step to say it waits for YARN")
    assert shared_cp.step(cid, step["id"])["status"] == "RUNNING"
    assert "waiting for YARN: 1 container of" in _cli(shared_cp, "step", "describe", cid, step["id"])
    _ended_by_timeout(shared_cp, hadoop_cluster, step, timeout, waiting.split(" not granted")[0])


def test_a_step_whose_application_master_cannot_start_says_so_and_is_ended_by_its_timeout(
        shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """Issue 10's first input: a long-running application (there the SQL endpoint, here a
    cluster-mode driver left running) holds the queue's share for ApplicationMasters, so
    the step's application stays ACCEPTED ("Queue's AM resource limit exceeded")."""
    cid = hadoop_cluster["id"]
    rm = hadoop_cluster["web_uis"]["resourcemanager"]
    queue = HTTP.get(f"{rm}/ws/v1/cluster/scheduler", timeout=5).json()["scheduler"]["schedulerInfo"]["queues"]["queue"][0]
    am_limit = queue["AMResourceLimit"]["memory"]
    nm_mib = min(n["totalResource"]["memory"] for n in HTTP.get(f"{rm}/ws/v1/cluster/nodes", timeout=5).json()["nodes"]["node"])
    holder_mib = min(am_limit, nm_mib)  # the first application always starts, whatever the limit
    assert holder_mib + 1024 > am_limit, f"an AM of {holder_mib} MB leaves room for another under {am_limit} MB"
    holder, app = tmp_path / "holder.py", tmp_path / "app.py"
    holder.write_text("import time\nfrom pyspark.sql import SparkSession\n"
                      "SparkSession.builder.appName('am-share-holder').getOrCreate()\ntime.sleep(600)\n")
    app.write_text("from pyspark.sql import SparkSession\nSparkSession.builder.appName('no-am-room').getOrCreate()\n")
    timeout = WAIT_STEP_TIMEOUT
    command = (f"spark-submit --deploy-mode cluster --driver-memory {_jvm_mib_for(holder_mib)}m "
               "--conf spark.yarn.submit.waitAppCompletion=false --conf spark.dynamicAllocation.enabled=true "
               "--conf spark.executor.instances=0 --conf spark.dynamicAllocation.initialExecutors=0 "
               f"--conf spark.dynamicAllocation.minExecutors=0 {holder} && spark-submit {app}")
    step = shared_cp.add_step(cid, "SHELL", [command], timeout=timeout)
    waiting = shared_cp.wait_for(lambda: (m := shared_cp.step(cid, step["id"])["state_message"] or "")
                                 and m.startswith("waiting for YARN: Queue's AM resource limit exceeded (") and m,
                                 timeout, "the step to say its ApplicationMaster waits")
    assert re.search(r" ACCEPTED for \d+ s, its ApplicationMaster \(\d+ MB, \d+ vcores?\) not started", waiting), waiting
    assert len(shared_cp.step(cid, step["id"])["yarn_application_ids"]) == 2
    _ended_by_timeout(shared_cp, hadoop_cluster, step, timeout, "waiting for YARN: Queue's AM resource limit exceeded")


def test_a_failed_map_tasks_own_error_is_in_the_steps_reason(shared_cp: ControlPlaneProcess,
                                                           hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """Issue 10: the container's error was only in `yarn logs`; the step said the job failed."""
    cid = hadoop_cluster["id"]
    (tmp_path / "in.txt").write_text("first record\nsecond record\n")
    _shell(shared_cp, cid, f"hdfs dfs -mkdir -p /bad && hdfs dfs -put -f {tmp_path / 'in.txt'} /bad/in.txt")
    mapper = tmp_path / "mapper.py"
    mapper.write_text("import sys\nfor line in sys.stdin:\n    raise ValueError('cannot parse record ' + repr(line.strip()))\n")
    once = ["-D", "mapreduce.map.maxattempts=1"]
    streaming = shared_cp.add_step(cid, "STREAMING", [*once, "-mapper", str(mapper), "-input", "/bad/in.txt",
                                                      "-output", "/bad/out-streaming"])
    # A Java map task: secondarysort's mapper parses each line as two integers.
    java = shared_cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "secondarysort", *once,
                                                  "/bad/in.txt", "/bad/out-sort"])
    for step, expected in ((streaming, "container error: ValueError: cannot parse record '"),
                           (java, 'container error: java.lang.NumberFormatException: For input string: "')):
        done = shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)
        assert done["status"] == "FAILED", done
        message = shared_cp.wait_for(lambda s=step: "container error:" in (m := shared_cp.step(cid, s["id"])["state_message"])
                                     and m, 30, "the container's error in the step's reason")
        first_line = message.splitlines()[0]
        assert first_line.startswith("exit code ") and expected in first_line, message
        assert "container error:" in _cli(shared_cp, "step", "describe", cid, step["id"])


def test_a_cluster_mode_pyspark_drivers_error_is_in_the_steps_reason(shared_cp: ControlPlaneProcess,
                                                                   hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    """The driver's traceback is in its YARN container's stdout; the RM says only "User
    application exited with status 1"."""
    cid = hadoop_cluster["id"]
    app = tmp_path / "broken.py"
    app.write_text("from pyspark.sql import SparkSession\nSparkSession.builder.appName('broken').getOrCreate()\n"
                   "raise LookupError('no partition for 2026-12-01')\n")
    step = shared_cp.add_step(cid, "SPARK", ["--deploy-mode", "cluster", "--conf", "spark.yarn.maxAppAttempts=1", str(app)])
    assert shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)["status"] == "FAILED"
    message = shared_cp.wait_for(lambda: "container error:" in (m := shared_cp.step(cid, step["id"])["state_message"])
                                 and m, 30, "the driver's error in the step's reason")
    assert "container error: LookupError: no partition for 2026-12-01" in message.splitlines()[0], message


def test_datanode_killed_during_a_mapreduce_job(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any]) -> None:
    cid = hadoop_cluster["id"]
    victim = _core_nodes(shared_cp.cluster(cid))[0]
    step = shared_cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "teragen",
                                                  "-Dmapreduce.job.maps=4", "3000000", "/fault/dn"])
    apps = shared_cp.wait_for(lambda: shared_cp.step(cid, step["id"])["yarn_application_ids"], 60, "the application id")
    shared_cp.wait_for(lambda: _yarn_app(hadoop_cluster, apps[0])["progress"] > 5, 120, "the job to make progress")
    datanode = _daemon(cid, victim["id"], "org.apache.hadoop.hdfs.server.datanode.DataNode")
    os.kill(datanode.pid, signal.SIGKILL)
    done = shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    shared_cp.wait_for(lambda: any(e["code"] == "COMPONENT_RUNNING" and e["component"] == "datanode"
                                   and e["time"] > done["started_at"] for e in shared_cp.events(cid)), 60,
                       "the DataNode to be restarted")
    fsck = _shell(shared_cp, cid, "hdfs fsck / 2>/dev/null | grep -E 'Missing blocks|Corrupt blocks|is HEALTHY|is CORRUPT'")
    assert "is HEALTHY" in fsck, fsck
    assert all(line.split(":")[1].split()[0] == "0" for line in fsck.splitlines() if "blocks" in line), fsck
    assert _shell(shared_cp, cid, "hdfs dfs -du -s /fault/dn").split()[0] == str(300_000_000)


def test_nodemanager_killed_during_a_spark_step(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any],
                                                tmp_path: Path) -> None:
    cid = hadoop_cluster["id"]
    victim = _core_nodes(shared_cp.cluster(cid))[1]
    app = tmp_path / "slow_sum.py"
    app.write_text(
        "import time\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('slow-sum').getOrCreate()\n"
        "total = spark.sparkContext.parallelize(range(2000), 16).map(lambda x: (time.sleep(0.05), x)[1]).sum()\n"
        "print('sum', total)\n")
    step = shared_cp.add_step(cid, "SPARK", [str(app)])
    apps = shared_cp.wait_for(lambda: shared_cp.step(cid, step["id"])["yarn_application_ids"], 90, "the application id")
    shared_cp.wait_for(lambda: _yarn_app(hadoop_cluster, apps[0])["state"] == "RUNNING", 90, "the application to run")
    time.sleep(5)  # executors are working
    # On YARN too, the driver, the ApplicationMaster and the executors map the class-data archive.
    spark_jvms = {"SparkSubmit", "ExecutorLauncher", "YarnCoarseGrainedExecutorBackend", "HistoryServer"}
    assert class_data_archive_use(cid, spark_jvms) == dict.fromkeys(spark_jvms, True)
    os.kill(_daemon(cid, victim["id"], "org.apache.hadoop.yarn.server.nodemanager.NodeManager").pid, signal.SIGKILL)
    done = shared_cp.wait_step(cid, step["id"], timeout=MR_TIMEOUT)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    assert f"sum {sum(range(2000))}" in shared_cp.log(cid, step["id"])
    assert any(e["code"] == "COMPONENT_CRASHED" and e["component"] == "nodemanager" for e in shared_cp.events(cid))
    shared_cp.wait_cluster(cid, ("WAITING",), timeout=60)


def test_terminate_leaves_no_daemon_container_or_port(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any]) -> None:
    cid = hadoop_cluster["id"]
    cluster = shared_cp.cluster(cid)
    addresses = {n["address"] for n in cluster["nodes"]}
    step = shared_cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "teragen", "200000000", "/tera/left"])
    shared_cp.wait_for(lambda: shared_cp.step(cid, step["id"])["yarn_application_ids"], 60, "the application id")
    shared_cp.wait_for(lambda: [p for p in cluster_processes(cid) if "org.apache.hadoop.mapreduce.v2.app.MRAppMaster"
                                in p.cmdline()], 90, "the job's ApplicationMaster to run in a YARN container")
    final = shared_cp.terminate(cid)
    assert final["status"] == "TERMINATED"
    assert shared_cp.step(cid, step["id"])["status"] == "INTERRUPTED"
    shared_cp.wait_for(lambda: not cluster_processes(cid), 30, "every process of the cluster to be gone")
    assert listening_on(addresses) == []
