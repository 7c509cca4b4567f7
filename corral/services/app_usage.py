"""What a finished YARN application used, from the daemons that remember it: the RM's
application report (``/ws/v1/cluster/apps/{id}``: memorySeconds, vcoreSeconds, elapsedTime;
its attempts, one ApplicationMaster container each), the JobHistory Server's job report
(a MapReduce job's task attempts), the Spark History Server's executor list (a Spark
application's executors). The RM keeps only the last
``yarn.resourcemanager.max-completed-applications`` (1000) finished applications, so
these are read when the step ends (``corral.reconcile.step_cost``)."""

from __future__ import annotations

from typing import Any

import httpx

from corral.services.base import HTTP, NotYet

FINAL_STATES = ("FINISHED", "FAILED", "KILLED")


def _report(rm: str, app: str, timeout: float) -> dict[str, Any] | None:
    """The RM's report of ``app``; None when it does not know it (forgotten, or never)."""
    response = HTTP.get(f"{rm}/apps/{app}", timeout=timeout)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return dict(response.json()["app"])


def application_type(rm: str, app: str, timeout: float) -> str | None:
    """MAPREDUCE, SPARK, ... (None when unknown or the RM does not answer)."""
    try:
        report = _report(rm, app, timeout)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return str(report.get("applicationType")) if report else None


def rm_usage(rm: str, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """memory_seconds (MiB x s), vcore_seconds, elapsed_seconds, attempts, type and
    final_status of each finished application the RM knows. NotYet while one runs."""
    usage: dict[str, dict[str, Any]] = {}
    for app in application_ids:
        try:
            report = _report(rm, app, timeout)
            if report is None:
                continue
            if report.get("state") not in FINAL_STATES:
                raise NotYet(f"{app} is {report.get('state')}")
            attempts = (HTTP.get(f"{rm}/apps/{app}/appattempts", timeout=timeout).json().get("appAttempts") or {})
        except httpx.HTTPError as exc:  # not answering now (a restart): asked again, within the patience
            raise NotYet(f"the ResourceManager does not answer for {app}: {type(exc).__name__}") from exc
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        usage[app] = {"type": report.get("applicationType"), "final_status": report.get("finalStatus"),
                      "memory_seconds": int(report.get("memorySeconds") or 0),
                      "vcore_seconds": int(report.get("vcoreSeconds") or 0),
                      "elapsed_seconds": round(int(report.get("elapsedTime") or 0) / 1000.0, 3),
                      "attempts": len(attempts.get("appAttempt") or [])}
    return usage


def mapreduce_task_containers(history: str, app: str, timeout: float) -> int | None:
    """The task attempts a MapReduce job launched (each one container: maps and reduces,
    successful, failed and killed), from the JobHistory Server; NotYet until it has the job."""
    job = "job_" + app.removeprefix("application_")
    response = HTTP.get(f"{history}/ws/v1/history/mapreduce/jobs/{job}", headers={"Accept": "application/json"},
                        timeout=timeout)
    if response.status_code == 404:
        raise NotYet(f"the JobHistory Server has no {job} yet")
    response.raise_for_status()
    info = response.json()["job"]
    keys = [f"{state}{kind}Attempts" for kind in ("Map", "Reduce") for state in ("successful", "failed", "killed")]
    return sum(int(info.get(k) or 0) for k in keys)


def spark_executors(history: str, app: str, timeout: float) -> int | None:
    """The executors a Spark application had (each one YARN container), from the Spark
    History Server; NotYet until it has read the application's event log."""
    response = HTTP.get(f"{history}/api/v1/applications/{app}/allexecutors", timeout=timeout)
    if response.status_code == 404:
        raise NotYet(f"the Spark History Server has not read {app}'s event log yet")
    response.raise_for_status()
    return sum(1 for e in response.json() if e.get("id") != "driver")
