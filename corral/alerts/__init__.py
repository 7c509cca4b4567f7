"""Alerts (issue 13 §4): rules on the metric samples and on cluster events, their alerts
(PENDING -> FIRING -> RESOLVED, ``corral.domain.states.AlertState``) and notifications to
webhooks in Alertmanager's webhook format.

- ``rules``: a rule's validation, comparisons, durations, message templates, the built-in
  defaults (pure).
- ``evaluate``: a metric rule's transitions from a sample's values, the current alerts and
  the time (pure).
- ``records``: writing transitions to the store: the alert row, its cluster event and its
  deliveries, in one transaction.
- ``metric_rules``: the sampler's listener; ``event_rules``: rules on new ``events`` rows
  past a stored watermark.
- ``notify``: Alertmanager's webhook JSON, and the sender that delivers with retries.
- ``engine``: what the reconcile loop drives.
"""
