"""The audit log's action name and target of an API call, from its method and path.

Corral's routes alternate collections and identifiers (``/clusters/{cluster_id}/steps/
{step_id}/cancel``), so the name follows from the path's shape alone, the same for a call
that was allowed, refused (401/403, before any route ran) or matched no route:

- the resource is the last collection, singular (``clusters`` -> ``cluster``);
- a last segment after an identifier that is no collection is the verb
  (``/clusters/{id}/terminate`` -> ``cluster.terminate``, ``.../steps/{id}/cancel`` ->
  ``step.cancel``);
- otherwise the method says it: POST on a collection ``create``, PUT/PATCH/POST on an item
  ``update``, DELETE ``delete``, with the names people use where they differ
  (``OVERRIDES``: ``step.add``, ``host.add``, ``host.remove``, ``token.revoke``,
  ``artifact.upload``, ``group.resize|add|remove``, ``alert_rule.add|remove``,
  ``webhook.add|remove``, and DELETE of a cluster is its ``cluster.terminate``);
- ``/alerts/rules`` and ``/alerts/webhooks`` are the ``alert_rule`` and ``webhook``
  collections (``alert_rule.update`` enables or disables a rule);
- ``/clusters/{id}/data/imports|exports`` is ``data.import`` / ``data.export``;
- a ``force`` query flag that is true makes ``host.remove`` ``host.force_remove``
  (``FORCED``): the log tells a forced removal apart, whether it was allowed or not.

The target is the last identifier in the path (the step of a cancel, the cluster of a
step add); a create names what it made through ``set_target``.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

API_PREFIX = "/api/v1"
TARGET_KEY = "corral.audit_target"  # in the ASGI scope: a target the path does not carry
COLLECTIONS = {"clusters": "cluster", "steps": "step", "tokens": "token", "hosts": "host", "artifacts": "artifact",
               "audit": "audit", "nodes": "node", "groups": "group", "node-groups": "group", "data": "data",
               "autoscaling-policy": "autoscaling_policy", "rules": "alert_rule", "webhooks": "webhook"}
ALERT_PARTS = ("rules", "webhooks")  # /alerts/rules, /alerts/webhooks: the collection is the second segment
DEFAULT_VERBS = {("collection", "POST"): "create", ("collection", "PUT"): "update",
                 ("collection", "PATCH"): "update", ("collection", "DELETE"): "delete",
                 ("item", "POST"): "update", ("item", "PUT"): "update", ("item", "PATCH"): "update",
                 ("item", "DELETE"): "delete"}
OVERRIDES = {("step", "collection", "POST"): "add", ("host", "collection", "POST"): "add",
             ("host", "item", "DELETE"): "remove", ("token", "item", "DELETE"): "revoke",
             ("cluster", "item", "DELETE"): "terminate", ("artifact", "item", "PUT"): "upload",
             ("group", "item", "PATCH"): "resize", ("group", "collection", "POST"): "add",
             ("group", "item", "DELETE"): "remove", ("alert_rule", "collection", "POST"): "add",
             ("alert_rule", "item", "DELETE"): "remove", ("webhook", "collection", "POST"): "add",
             ("webhook", "item", "DELETE"): "remove"}

FORCED = {"host.remove": "host.force_remove"}
TRUE = frozenset({"1", "true", "yes", "on"})  # what FastAPI reads as a true bool


def describe(method: str, path: str, query: str = "") -> tuple[str, str | None]:
    """``(action, target)`` of ``method path?query`` (a path under ``/api/v1``, as decoded
    in the ASGI scope), e.g. ``("cluster.terminate", "c-3kq9x2ab")``."""
    action, target = _describe(method, path)
    if action in FORCED and parse_qs(query).get("force", [""])[-1].lower() in TRUE:
        action = FORCED[action]
    return action, target


def _describe(method: str, path: str) -> tuple[str, str | None]:
    parts = [p for p in path.removeprefix(API_PREFIX).split("/") if p]
    if parts[:1] == ["alerts"] and parts[1:2] and parts[1] in ALERT_PARTS:
        parts = parts[1:]
    method = method.upper()
    resource, target, shape, verb = "api", None, "collection", None
    i = 0
    while i < len(parts):
        name = parts[i]
        if name == "data" and i > 0 and i + 1 < len(parts):  # /clusters/{id}/data/imports
            return f"data.{parts[i + 1].removesuffix('s')}", target
        if i > 0 and i == len(parts) - 1 and name not in COLLECTIONS:  # /clusters/{id}/terminate
            verb = name
            break
        resource = COLLECTIONS.get(name) or name.removesuffix("s") or name
        if i + 1 < len(parts):
            target, shape = parts[i + 1], "item"
        else:
            shape = "collection"
        i += 2
    if verb is None:
        verb = OVERRIDES.get((resource, shape, method)) or DEFAULT_VERBS.get((shape, method), method.lower())
    return f"{resource}.{verb}", target


def set_target(request: Request, target: str) -> None:
    """Name the audit target of a call whose path does not carry it (what a POST made)."""
    request.scope[TARGET_KEY] = target
