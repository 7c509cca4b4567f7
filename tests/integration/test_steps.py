"""Steps on a shared real cluster: queue order, ActionOnFailure, logs, cancel, a Worker crash."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import (HTTP, ISSUE10_SPARK_ENV, ISSUE10_SPARK_VALUE, WAIT_STEP_TIMEOUT,
                                       ControlPlaneProcess, class_data_archive_use, cluster_processes)

pytestmark = pytest.mark.integration


def _master_json(cluster: dict[str, Any]) -> dict[str, Any]:
    return HTTP.get(cluster["web_uis"]["spark-master"] + "/json/", timeout=5).json()  # type: ignore[no-any-return]


def test_steps_run_in_order_with_action_on_failure(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    cid = spark_cluster["id"]
    failing = shared_cp.add_step(cid, "SHELL", ["echo hello; echo oops >&2; exit 3"], name="fails")
    after = shared_cp.add_step(cid, "SHELL", ["/bin/echo", "after", "the failure"], name="continues")
    env = shared_cp.add_step(cid, "SHELL", ['echo "$SPARK_HOME|$SPARK_CONF_DIR|$(command -v spark-submit)"'])
    stop = shared_cp.add_step(cid, "SHELL", ["exit 1"], action_on_failure="CANCEL_AND_WAIT")
    never = shared_cp.add_step(cid, "SHELL", ["echo never"])

    failing = shared_cp.wait_step(cid, failing["id"])
    assert failing["status"] == "FAILED" and failing["exit_code"] == 3
    assert "exit code 3" in failing["state_message"] and "oops" in failing["state_message"]
    assert shared_cp.log(cid, failing["id"]) == "hello\n"
    assert shared_cp.log(cid, failing["id"], "stderr") == "oops\n"

    after = shared_cp.wait_step(cid, after["id"])
    assert after["status"] == "COMPLETED"
    assert shared_cp.log(cid, after["id"]) == "after the failure\n"
    assert after["started_at"] >= failing["ended_at"]

    env = shared_cp.wait_step(cid, env["id"])
    spark_home, conf_dir, submit = shared_cp.log(cid, env["id"]).strip().split("|")
    assert Path(spark_home, "bin", "spark-class").exists()
    assert Path(conf_dir, "spark-defaults.conf").exists()
    assert submit == f"{spark_home}/bin/spark-submit"

    stopped = shared_cp.wait_step(cid, stop["id"])
    assert stopped["status"] == "FAILED" and stopped["state_message"] == "exit code 1; nothing on stderr"
    never = shared_cp.wait_step(cid, never["id"])
    assert never["status"] == "CANCELLED" and "CANCEL_AND_WAIT" in never["state_message"]
    assert never["started_at"] is None
    assert shared_cp.wait_cluster(cid, ("WAITING",))["status"] == "WAITING"


CONF_PROBE = textwrap.dedent("""
    import os
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("conf-probe").getOrCreate()
    print(repr(spark.conf.get("spark.corral.test")))
    print(repr(os.environ.get("CORRAL_TEST_ENV")))
    seen = spark.sparkContext.parallelize(range(2), 2).map(lambda _: os.environ.get("CORRAL_TEST_ENV")).collect()
    print(repr(sorted(set(seen))))
""")


def test_configuration_values_reach_the_driver_and_executors_exactly(shared_cp: ControlPlaneProcess,
                                                                     spark_cluster: dict[str, Any], tmp_path: Path,
                                                                     pyspark_home: Path) -> None:
    """Issue 10: spark-defaults is Java properties (read by the driver as written, not as
    `C:<TAB>emp<LF>ew #x`); spark-env is sourced as shell by spark-submit and the Workers,
    whose executors inherit it."""
    cid = spark_cluster["id"]
    job = tmp_path / "conf_probe.py"
    job.write_text(CONF_PROBE)
    step = shared_cp.wait_step(cid, shared_cp.add_step(cid, "SPARK", [str(job)])["id"])
    assert step["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    env = ISSUE10_SPARK_ENV.replace("$CORRAL_CLUSTER_ID", cid).replace("${SPARK_HOME}", str(pyspark_home))
    assert shared_cp.log(cid, step["id"]).splitlines() == [repr(ISSUE10_SPARK_VALUE), repr(env), repr([env])]


def test_follow_logs_while_a_step_runs(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    cid = spark_cluster["id"]
    step = shared_cp.add_step(cid, "SHELL", ["for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.5; done"])
    seen, offset, states = b"", 0, set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        resp = shared_cp.http.get(f"/clusters/{cid}/steps/{step['id']}/logs/stdout", params={"offset": offset})
        seen += resp.content
        offset = int(resp.headers["X-Corral-Next-Offset"])
        states.add(resp.headers["X-Corral-Step-State"])
        if resp.headers["X-Corral-Step-State"] == "COMPLETED" and not resp.content:
            break
        time.sleep(0.2)
    assert seen.decode() == "".join(f"line-{i}\n" for i in range(1, 7))
    assert "RUNNING" in states, "lines should be readable while the step runs"


def test_step_logs_prints_a_log_past_one_page(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    """Issue 10, section 4: `corral step logs` printed the first MiB (one API page) of a
    1 MiB + 1 byte log, with no marker and exit 0."""
    cid = spark_cluster["id"]
    size = (1 << 20) + 1
    step = shared_cp.add_step(cid, "SHELL", [f"python3 -c \"print('x'*{size}, end='')\"; "
                                             f"python3 -c \"import sys; sys.stderr.write('e'*{size})\""])
    assert shared_cp.wait_step(cid, step["id"])["status"] == "COMPLETED"
    for flags, char in (((), "x"), (("--stderr",), "e")):
        result = subprocess.run([sys.executable, "-m", "corral.cli.main", "step", "logs", cid, step["id"], *flags],
                                env=shared_cp.env, capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout) == size and result.stdout == char.encode() * size
    assert shared_cp.log(cid, step["id"]) == "x" * size  # the tests' own reader too


SLEEPY_JOB = textwrap.dedent("""
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("sleepy-cancel-me").getOrCreate()
    print("started", flush=True)
    spark.sparkContext.parallelize(range(4), 4).map(lambda x: time.sleep(600) or x).collect()
""")


def test_cancel_running_spark_step_stops_driver_and_application(shared_cp: ControlPlaneProcess,
                                                                spark_cluster: dict[str, Any], tmp_path: Path) -> None:
    cid = spark_cluster["id"]
    job = tmp_path / "sleepy.py"
    job.write_text(SLEEPY_JOB)
    step = shared_cp.add_step(cid, "SPARK", [str(job)], name="sleepy")
    shared_cp.wait_for(lambda: any(a["name"] == "sleepy-cancel-me" and a["state"] == "RUNNING"
                                   for a in _master_json(spark_cluster)["activeapps"]), 90, "the application to run")
    shared_cp.wait_for(lambda: any("CoarseGrainedExecutorBackend" in " ".join(p.cmdline())
                                   for p in cluster_processes(cid)), 60, "executors to start")
    # Every Spark JVM (daemons, driver, executors) maps the host's class-data archive. A JVM
    # maps it in its first moments, so a just-launched executor (the second Worker's may start
    # a little after the first) is looked at again for a few seconds.
    spark_jvms = {"Master", "Worker", "HistoryServer", "SparkSubmit", "CoarseGrainedExecutorBackend"}
    deadline, use = time.monotonic() + 10, class_data_archive_use(cid, spark_jvms)
    while use != dict.fromkeys(spark_jvms, True) and time.monotonic() < deadline:
        time.sleep(0.5)
        use = class_data_archive_use(cid, spark_jvms)
    try:
        assert use == dict.fromkeys(spark_jvms, True)
    finally:  # a failure here must not leave the sleepy step holding the queue for the next tests
        resp = shared_cp.http.post(f"/clusters/{cid}/steps/{step['id']}/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "CANCEL_PENDING"
    step = shared_cp.wait_step(cid, step["id"], timeout=60)
    assert step["status"] == "CANCELLED"
    shared_cp.wait_for(lambda: not _master_json(spark_cluster)["activeapps"], 30, "the application to leave the Master")
    assert any(a["name"] == "sleepy-cancel-me" for a in _master_json(spark_cluster)["completedapps"])

    def leftovers() -> list[str]:
        return [" ".join(p.cmdline())[:120] for p in cluster_processes(cid)
                if any(k in " ".join(p.cmdline()) for k in ("CoarseGrainedExecutorBackend", "SparkSubmit", "sleepy.py"))]
    shared_cp.wait_for(lambda: not leftovers(), 30, "driver and executors to exit")
    assert shared_cp.http.post(f"/clusters/{cid}/steps/{step['id']}/cancel").status_code == 409


def test_cancel_pending_step(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    cid = spark_cluster["id"]
    blocker = shared_cp.add_step(cid, "SHELL", ["sleep 3"])
    queued = shared_cp.add_step(cid, "SHELL", ["echo should-not-run"])
    resp = shared_cp.http.post(f"/clusters/{cid}/steps/{queued['id']}/cancel")
    assert resp.json()["status"] == "CANCELLED"
    assert shared_cp.wait_step(cid, blocker["id"])["status"] == "COMPLETED"
    assert shared_cp.step(cid, queued["id"])["status"] == "CANCELLED"
    assert shared_cp.log(cid, queued["id"]) == ""


def test_a_standalone_spark_application_left_without_executors_says_so_and_is_ended_by_its_timeout(
        shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any], tmp_path: Path) -> None:
    """Another application holds every Worker's memory: the Master keeps the step's own
    application WAITING and its driver logs "Initial job has not accepted any resources"
    for ever (issue 10). (An executor larger than any Worker is refused at step add.)"""
    cid = spark_cluster["id"]
    worker_mib = max(w["memory"] for w in _master_json(spark_cluster)["workers"] if w["state"] == "ALIVE")
    holder, job = tmp_path / "holder.py", tmp_path / "job.py"
    holder.write_text("import time\nfrom pyspark.sql import SparkSession\n"
                      "sc = SparkSession.builder.appName('holds-every-worker').getOrCreate().sparkContext\n"
                      "sc.parallelize(range(4), 4).count()\nprint('holding', flush=True)\ntime.sleep(600)\n")
    job.write_text("from pyspark.sql import SparkSession\n"
                   "print(SparkSession.builder.appName('left-waiting').getOrCreate().sparkContext.parallelize(range(9)).sum())\n")
    command = (f"spark-submit --executor-memory {worker_mib}m {holder} > holder.log 2>&1 & "
               "until grep -q holding holder.log; do sleep 1; done; "
               f"spark-submit {job}")
    timeout = WAIT_STEP_TIMEOUT
    step = shared_cp.add_step(cid, "SHELL", [command], timeout=timeout)
    message = shared_cp.wait_for(lambda: (m := shared_cp.step(cid, step["id"])["state_message"] or "")
                                 .startswith("waiting for Spark: application app-") and m, timeout,
                                 "the step to say its application waits for executors")
    assert re.search(r" WAITING for \d+ s without executors; each needs \d+ MB \(largest free on a Worker: "
                     r"\d+ MB, \d+ cores\)$", message), message
    app_id = message.split("application ", 1)[1].split(" ", 1)[0]
    assert shared_cp.step(cid, step["id"])["spark_application_ids"] == [app_id]  # read from the driver's log
    assert any(a["id"] == app_id and a["state"] == "WAITING" for a in _master_json(spark_cluster)["activeapps"])
    done = shared_cp.wait_step(cid, step["id"], timeout=timeout + 60)
    assert (done["status"], done["failure_code"]) == ("FAILED", "TIMEOUT"), done
    assert done["state_message"].startswith(f"TIMEOUT: the step ran longer than its timeout of {timeout} s"), done
    assert "it was waiting for Spark: application " in done["state_message"], done
    shared_cp.wait_for(lambda: not _master_json(spark_cluster)["activeapps"], 30, "both applications to leave the Master")


LONG_JOB = textwrap.dedent("""
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("survives-worker-loss").getOrCreate()
    total = spark.sparkContext.parallelize(range(400), 80).map(lambda x: time.sleep(0.25) or x).sum()
    print(f"total={total}", flush=True)
""")


def test_worker_killed_during_step_is_restarted_and_step_completes(shared_cp: ControlPlaneProcess,
                                                                    spark_cluster: dict[str, Any], tmp_path: Path) -> None:
    cid = spark_cluster["id"]
    job = tmp_path / "long.py"
    job.write_text(LONG_JOB)
    step = shared_cp.add_step(cid, "SPARK", [str(job)])
    shared_cp.wait_for(lambda: any(a["name"] == "survives-worker-loss" and a["state"] == "RUNNING"
                                   for a in _master_json(spark_cluster)["activeapps"]), 90, "the application to run")
    time.sleep(4)  # let tasks run on both workers
    victim = next(n for n in shared_cp.cluster(cid)["nodes"] if n["role"] == "CORE")
    pid = victim["components"]["spark-worker"]["pid"]
    assert "org.apache.spark.deploy.worker.Worker" in " ".join(psutil.Process(pid).cmdline())
    os.kill(pid, signal.SIGKILL)

    step = shared_cp.wait_step(cid, step["id"], timeout=300)
    assert step["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    assert f"total={sum(range(400))}" in shared_cp.log(cid, step["id"])

    def worker_back() -> bool:
        node = next(n for n in shared_cp.cluster(cid)["nodes"] if n["id"] == victim["id"])
        worker = node["components"]["spark-worker"]
        return worker["status"] == "RUNNING" and worker["restarts"] >= 1 and worker["pid"] != pid
    shared_cp.wait_for(worker_back, 60, "the agent to restart the Worker")
    shared_cp.wait_for(lambda: sum(w["state"] == "ALIVE" for w in _master_json(spark_cluster)["workers"]) >= 2
                       and victim["address"] in {w["host"] for w in _master_json(spark_cluster)["workers"]
                                                 if w["state"] == "ALIVE"}, 60, "the Worker to re-register")
    crashes = [e for e in shared_cp.events(cid) if e["code"] == "COMPONENT_CRASHED" and e["node_id"] == victim["id"]]
    assert crashes and crashes[0]["component"] == "spark-worker"
