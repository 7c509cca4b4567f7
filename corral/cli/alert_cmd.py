"""``corral alert``: alert rules, alerts and webhooks (``/api/v1/alerts``, ``corral.alerts``).

``alert rule add|list|remove|enable|disable``, ``alert list [--firing]``, ``alert webhook
add|list|remove|deliveries``. A rule or webhook is named by its id or by its name in its
scope (``--cluster``, else global). Bad input exits 2 with one line naming the field.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from corral.cli.client import ApiError, Client
from corral.cli.outcome import finish
from corral.cli.paging import list_all
from corral.cli.render import Output, console, print_json, table, when

app = typer.Typer(help="Alert rules, alerts and the webhooks they notify (Alertmanager's format).",
                  no_args_is_help=True)
rule_app = typer.Typer(help="Add, list, enable, disable and remove alert rules.", no_args_is_help=True)
webhook_app = typer.Typer(help="Add, list and remove webhooks, and see their deliveries (admin to change).",
                          no_args_is_help=True)
app.add_typer(rule_app, name="rule")
app.add_typer(webhook_app, name="webhook")
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")
ClusterOpt = typer.Option(None, "--cluster", "-c", help="A cluster's id: its own rule or webhook (default: global).")
STATE_STYLES = {"FIRING": "red", "PENDING": "yellow", "RESOLVED": "green", "DELIVERED": "green", "FAILED": "red"}


def _styled(state: str) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _find(client: Client, kind: str, ident: str, cluster: str | None) -> dict[str, Any]:
    """The rule or webhook (``kind``: rules | webhooks) with that id, else that name in the
    scope; ApiError (exit 2) naming what exists otherwise."""
    items = client.get(f"/alerts/{kind}", params={"cluster_id": cluster} if cluster else None)
    by_id = [i for i in items if i["id"] == ident]
    if by_id:
        return by_id[0]
    named = [i for i in items if i["name"] == ident and i["cluster_id"] == cluster]
    if named:
        return named[0]
    scope = f"on cluster {cluster}" if cluster else "global"
    known = ", ".join(sorted(i["name"] for i in items if i["cluster_id"] == cluster)) or "none"
    raise ApiError(404, f"no {kind.removesuffix('s').replace('rule', 'alert rule')} {ident!r} ({scope}; known: {known})")


def _scope(item: dict[str, Any]) -> str:
    return item["cluster_id"] or "global"


def _show_rule(rule: dict[str, Any], verb: str) -> None:
    console.print(f"Rule {rule['name']} ({rule['id']}) {verb}: {rule['expression']}, {rule['severity']}, "
                  f"{_scope(rule)}" + ("" if rule["enabled"] else ", disabled"), markup=False, highlight=False)


@rule_app.command("add")
def rule_add(name: str = typer.Option(..., "--name", "-n", help="The rule's name (the alertname label)."),
             metric: Optional[str] = typer.Option(None, "--metric", "-m",
                                                  help="An EMR/CloudWatch metric (MissingBlocks, CPUUtilization, ...)."),
             comparison: Optional[str] = typer.Option(None, "--comparison",
                                                      help="> >= < <= == != (or GREATER_THAN, LESS_THAN, ...)."),
             threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="The value compared with."),
             for_: Optional[str] = typer.Option(None, "--for", help="How long it must hold before firing: 30s, 2m, 1h."),
             event: Optional[str] = typer.Option(None, "--event",
                                                 help="An event rule instead: fire once per event with this code "
                                                      "(STEP_FAILED, NODE_LOST, CLUSTER_TERMINATED_WITH_ERRORS)."),
             severity: str = typer.Option("warning", "--severity", "-s", help="critical, warning or info."),
             message: Optional[str] = typer.Option(None, "--message",
                                                   help="The summary; may name {value}, {threshold}, {node_id}, ..."),
             cluster: Optional[str] = ClusterOpt,
             disabled: bool = typer.Option(False, "--disabled", help="Add it disabled."),
             output: Output = OutputOpt) -> None:
    """Add a metric rule (--metric --comparison --threshold [--for]) or an event rule (--event)."""
    body: dict[str, Any] = {"name": name, "metric": metric, "comparison": comparison, "threshold": threshold,
                            "for": for_, "event_code": event, "severity": severity, "message": message,
                            "cluster_id": cluster, "enabled": not disabled}
    rule = Client().post("/alerts/rules", json={k: v for k, v in body.items() if v is not None})
    finish(rule, output, lambda: _show_rule(rule, "added"), ok=True)


@rule_app.command("list")
def rule_list(cluster: Optional[str] = typer.Option(None, "--cluster", "-c",
                                                    help="The rules that apply to this cluster: global and its own."),
              output: Output = OutputOpt) -> None:
    """List alert rules: global first, then each cluster's."""
    rules = Client().get("/alerts/rules", params={"cluster_id": cluster} if cluster else None)
    if output is Output.json:
        print_json(rules)
        return
    t = table("id", "name", "scope", "rule", "severity", "enabled", "built-in")
    for r in rules:
        t.add_row(r["id"], r["name"], _scope(r), r["expression"], r["severity"], "yes" if r["enabled"] else "no",
                  "yes" if r["builtin"] else "")
    console.print(t)


@rule_app.command("remove")
def rule_remove(rule: str = typer.Argument(..., help="The rule's id or name."), cluster: Optional[str] = ClusterOpt,
                output: Output = OutputOpt) -> None:
    """Remove a rule with its alerts (a built-in rule can only be disabled)."""
    client = Client()
    found = _find(client, "rules", rule, cluster)
    gone = client.delete(f"/alerts/rules/{found['id']}")
    finish(gone, output, lambda: _show_rule(gone, "removed"), ok=True)


def _set_enabled(rule: str, cluster: str | None, enabled: bool, output: Output) -> None:
    client = Client()
    found = _find(client, "rules", rule, cluster)
    changed = client.patch(f"/alerts/rules/{found['id']}", json={"enabled": enabled})
    finish(changed, output, lambda: _show_rule(changed, "enabled" if enabled else "disabled"), ok=True)


@rule_app.command("enable")
def rule_enable(rule: str = typer.Argument(..., help="The rule's id or name."), cluster: Optional[str] = ClusterOpt,
                output: Output = OutputOpt) -> None:
    """Enable a rule."""
    _set_enabled(rule, cluster, True, output)


@rule_app.command("disable")
def rule_disable(rule: str = typer.Argument(..., help="The rule's id or name."), cluster: Optional[str] = ClusterOpt,
                 output: Output = OutputOpt) -> None:
    """Disable a rule: its alerts resolve (receivers of fired ones are told)."""
    _set_enabled(rule, cluster, False, output)


@app.command("list")
def alert_list(firing: bool = typer.Option(False, "--firing", help="Only FIRING alerts."),
               state: Optional[str] = typer.Option(None, "--state", help="Only PENDING, FIRING or RESOLVED alerts."),
               cluster: Optional[str] = typer.Option(None, "--cluster", "-c", help="Only this cluster's alerts."),
               output: Output = OutputOpt) -> None:
    """List alerts, oldest first: state, since when, value and summary."""
    params: list[tuple[str, str | int]] = [("firing", "true")] if firing else []
    params += [("state", state)] if state else []
    params += [("cluster_id", cluster)] if cluster else []
    alerts = list_all(Client(), "/alerts", params)
    if output is Output.json:
        print_json(alerts)
        return
    t = table("id", "alert", "cluster", "node", "state", "severity", "value", "since", "resolved", "summary")
    for a in alerts:
        t.add_row(a["id"], a["name"], a["cluster_id"], a["node_id"] or "-", _styled(a["state"]), a["severity"] or "-",
                  _value(a["value"]), when(a["fired_at"] or a["pending_since"]), when(a["resolved_at"]),
                  a["summary"].replace("[", r"\["))
    console.print(t)


@webhook_app.command("add")
def webhook_add(url: str = typer.Argument(..., help="http(s) URL of an Alertmanager-style webhook receiver."),
                name: Optional[str] = typer.Option(None, "--name", "-n", help="Its name (default: the URL's host)."),
                cluster: Optional[str] = typer.Option(None, "--cluster", "-c",
                                                      help="Only this cluster's alerts (default: every cluster's)."),
                output: Output = OutputOpt) -> None:
    """Add a webhook: every alert that fires or resolves is POSTed to it."""
    hook = Client().post("/alerts/webhooks", json={"url": url, "name": name, "cluster_id": cluster})
    finish(hook, output, lambda: console.print(f"Webhook {hook['name']} ({hook['id']}) added: {hook['url']}, "
                                               f"{_scope(hook)}", markup=False, highlight=False), ok=True)


@webhook_app.command("list")
def webhook_list(cluster: Optional[str] = typer.Option(None, "--cluster", "-c", help="Global ones and this cluster's."),
                 output: Output = OutputOpt) -> None:
    """List webhooks (their URLs masked: they may carry a credential)."""
    hooks = Client().get("/alerts/webhooks", params={"cluster_id": cluster} if cluster else None)
    if output is Output.json:
        print_json(hooks)
        return
    t = table("id", "name", "scope", "url", "created")
    for h in hooks:
        t.add_row(h["id"], h["name"], _scope(h), h["url"], when(h["created_at"]))
    console.print(t)


@webhook_app.command("remove")
def webhook_remove(webhook: str = typer.Argument(..., help="The webhook's id or name."),
                   cluster: Optional[str] = ClusterOpt, output: Output = OutputOpt) -> None:
    """Remove a webhook; its pending deliveries are dropped."""
    client = Client()
    found = _find(client, "webhooks", webhook, cluster)
    gone = client.delete(f"/alerts/webhooks/{found['id']}")
    finish(gone, output, lambda: console.print(f"Webhook {gone['name']} ({gone['id']}) removed",
                                               markup=False, highlight=False), ok=True)


@webhook_app.command("deliveries")
def webhook_deliveries(webhook: str = typer.Argument(..., help="The webhook's id or name."),
                       cluster: Optional[str] = ClusterOpt, output: Output = OutputOpt) -> None:
    """A webhook's deliveries, oldest first: each notification's state, attempts and last outcome."""
    client = Client()
    found = _find(client, "webhooks", webhook, cluster)
    rows = list_all(client, f"/alerts/webhooks/{found['id']}/deliveries")
    if output is Output.json:
        print_json(rows)
        return
    t = table("id", "alert", "status", "state", "attempts", "code", "last error", "created", "delivered")
    for d in rows:
        t.add_row(str(d["id"]), d["alert_id"], d["status"], _styled(d["state"]), str(d["attempts"]),
                  str(d["response_code"] or "-"), (d["last_error"] or "-").replace("[", r"\["), when(d["created_at"]),
                  when(d["delivered_at"]))
    console.print(t)
