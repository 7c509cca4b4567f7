"""What a step cost: its YARN applications' usage, summed (Dataproc's and EMR's job
figures: containers, memory-seconds, vcore-seconds, duration).

``Service.application_usage`` answers per application and per service; ``step_cost``
merges them into the step's ``cost`` (stored in ``steps.cost``):

    {"applications": {app_id: {"type", "final_status", "memory_seconds", "vcore_seconds",
                               "elapsed_seconds", "attempts", "containers"}},
     "total": {"applications", "containers", "memory_seconds", "vcore_seconds", "elapsed_seconds"},
     "missing": [app ids no daemon remembered], "recorded_at": epoch seconds}

``containers`` is the ApplicationMaster containers (one per attempt) plus the task
containers MapReduce's or Spark's history reports (task attempts, executors); absent when
neither is known. memory_seconds is in MiB x seconds, as YARN reports it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def step_cost(application_ids: list[str], answers: Iterable[Mapping[str, Mapping[str, Any]]],
              now: float) -> dict[str, Any]:
    """The step's cost from each service's answer (in the release's service order)."""
    merged: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for app, values in answer.items():
            if app in application_ids:
                merged.setdefault(app, {}).update(values)
    applications: dict[str, dict[str, Any]] = {}
    for app in application_ids:
        values = dict(merged.get(app) or {})
        if not values:
            continue
        tasks = values.pop("task_containers", None)
        attempts = values.get("attempts")
        if tasks is not None or attempts is not None:
            values["containers"] = int(tasks or 0) + int(attempts or 0)
        applications[app] = values

    def total(key: str) -> float | int:
        return sum(a.get(key) or 0 for a in applications.values())

    return {"applications": applications,
            "total": {"applications": len(applications), "containers": total("containers"),
                      "memory_seconds": total("memory_seconds"), "vcore_seconds": total("vcore_seconds"),
                      "elapsed_seconds": round(float(total("elapsed_seconds")), 3)},
            "missing": [app for app in application_ids if app not in applications],
            "recorded_at": now}
