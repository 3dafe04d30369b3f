"""The hub's self-metrics in Prometheus text format (``GET /metrics``).

Written directly rather than with ``prometheus_client``: a handful of counters and one histogram, per
hub *object* rather than in a process-global registry (tests and benchmarks run several hubs in one
process, and the global registry refuses duplicate names), and no extra dependency.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1


def _label(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class HubMetrics:
    samples: int = 0  # numeric points stored
    states: int = 0  # string values stored
    batches: int = 0  # telemetry messages committed
    events: int = 0
    transactions: int = 0
    write_errors: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # messages or samples dropped, by reason
    dead_letters: dict[str, int] = field(default_factory=dict)  # messages kept aside (hub/deadletter.py), by reason
    consumer_drift: int = 0  # durable consumers whose config differs from what this hub expects
    lag_s: float = 0.0  # stream store time of the last committed batch → commit
    pending: int = 0  # messages in the consumer not yet delivered, as last seen
    ack_pending: int = 0
    db_up: bool = True
    job_failures: int = 0  # background jobs whose latest run failed (TimescaleDB policies, plain maintenance)
    failing_jobs: list[dict] = field(default_factory=list)  # those jobs (storage/status.py ``failing``)
    fleet_leader: bool = False  # this hub runs fleet work (hub/leader.py)
    fleet_elected: int = 0  # times this hub won the fleet-work election
    fleet_fenced: int = 0  # times it stopped fleet work because it could not keep the key
    write_latency: Histogram = field(default_factory=Histogram)

    def set_jobs(self, failing: list[dict]) -> None:
        self.failing_jobs = failing
        self.job_failures = len(failing)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def render(self) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")

        metric("swtel_hub_samples_ingested_total", "counter", "samples stored, by value type",
               [('{type="number"}', self.samples), ('{type="string"}', self.states)])
        metric("swtel_hub_batches_total", "counter", "telemetry batches committed", [("", self.batches)])
        metric("swtel_hub_transactions_total", "counter", "ingest transactions committed", [("", self.transactions)])
        metric("swtel_hub_events_total", "counter", "events and config backups stored", [("", self.events)])
        metric("swtel_hub_dropped_total", "counter", "messages or samples dropped, by reason",
               [(f'{{reason="{r}"}}', n) for r, n in sorted(self.dropped.items())] or [('{reason="none"}', 0)])
        metric("swtel_hub_dead_letters_total", "counter",
               "messages kept aside instead of stored (forged tokens, poison, malformed), by reason",
               [(f'{{reason="{r}"}}', n) for r, n in sorted(self.dead_letters.items())] or [('{reason="none"}', 0)])
        metric("swtel_hub_forged_batches_total", "counter", "telemetry batches whose lease token is not genuine",
               [("", sum(n for r, n in self.dead_letters.items() if r.startswith("token_")))])
        metric("swtel_hub_consumer_config_drift", "gauge",
               "durable consumers whose configuration differs from the hub's (see /api/health)",
               [("", self.consumer_drift)])
        metric("swtel_hub_db_write_errors_total", "counter", "failed ingest transactions (retried)",
               [("", self.write_errors)])
        metric("swtel_hub_ingest_lag_seconds", "gauge", "stream store time to commit, last batch",
               [("", float(self.lag_s))])
        metric("swtel_hub_consumer_pending", "gauge", "messages waiting in the durable consumer",
               [("", self.pending)])
        metric("swtel_hub_consumer_ack_pending", "gauge", "messages delivered but not yet acknowledged",
               [("", self.ack_pending)])
        metric("swtel_hub_database_up", "gauge", "1 when the last database operation succeeded",
               [("", int(self.db_up))])
        metric("swtel_hub_timescaledb_job_failures", "gauge",
               "database background jobs whose latest run failed (TimescaleDB policies, plain maintenance)",
               [("", self.job_failures)])
        metric("swtel_hub_db_job_consecutive_failures", "gauge", "failed runs in a row of each failing job",
               [(f'{{job="{_label(j["name"])}"}}', j["consecutive_failures"]) for j in self.failing_jobs])
        metric("swtel_hub_fleet_work_leader", "gauge", "1 while this hub is the elected one running fleet work",
               [("", int(self.fleet_leader))])
        metric("swtel_hub_fleet_work_elections_total", "counter", "times this hub won the fleet-work election",
               [("", self.fleet_elected)])
        metric("swtel_hub_fleet_work_fenced_total", "counter",
               "times this hub stopped fleet work because it could not keep the election key", [("", self.fleet_fenced)])
        h = self.write_latency
        name = "swtel_hub_db_write_seconds"
        out.append(f"# HELP {name} ingest transaction latency")
        out.append(f"# TYPE {name} histogram")
        cumulative = 0
        for bound, c in zip((*h.bounds, float("inf")), h.counts):
            cumulative += c
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        out.append(f"{name}_sum {h.total:g}")
        out.append(f"{name}_count {h.n}")
        return "\n".join(out) + "\n"
