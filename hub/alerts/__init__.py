"""Alerting: rules over telemetry series, evaluated by the elected hub, notified through an outbox.

Modules, by job: ``rules`` (what a rule is, validation, path patterns), ``states`` (the per-instance state
machine), ``sources`` (the data the engine reads), ``engine`` (one evaluation pass, conditional
transitions in PostgreSQL), ``channels`` (webhook, Slack, SMTP senders), ``notify`` (outbox delivery with
retries), ``service`` (both as the elected hub's role), ``db`` (tables and queries), ``routes`` (HTTP).
See docs/ALERTING.md.
"""
