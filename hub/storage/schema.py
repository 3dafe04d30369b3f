"""Schema texts for both backends, and the versioned migration list.

A migration is a version number, a name, and SQL per backend (``common`` runs on both). Versions are
applied in order, each in its own transaction, and recorded in ``schema_migrations``; re-running
``swtel db migrate`` applies nothing twice. Settings-dependent policies (TimescaleDB retention,
compression, refresh) are not migrations: :func:`timescale_policies` re-applies them on every migrate, so
a changed ``retention_days`` takes effect at the next ``swtel db migrate``.

The TimescaleDB texts are written against TimescaleDB 2.13+ (``by_range``, hierarchical continuous
aggregates, ``materialized_only``); tests here run the plain path only (see tests/test_hub_timescale_sql.py).
"""

from __future__ import annotations

from dataclasses import dataclass

PLAIN = "plain"
TIMESCALE = "timescale"

META = """
CREATE TABLE IF NOT EXISTS swtel_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""

COMMON_V1 = """
-- one row per (device, full gNMI path with keys); points refer to it by a 4-byte id
CREATE TABLE series (
    id serial PRIMARY KEY,
    device text NOT NULL,
    name text NOT NULL,              -- full path with keys: /interfaces/interface[name=Et1]/state/counters/in-octets
    path text NOT NULL,              -- path without keys:   /interfaces/interface/state/counters/in-octets
    keys jsonb NOT NULL DEFAULT '{}',
    kind text NOT NULL DEFAULT 'num' CHECK (kind IN ('num', 'str')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device, name)
);
-- exactly-once: one row per committed telemetry batch (its Nats-Msg-Id), written in the batch's transaction
CREATE TABLE ingest_marks (
    device text NOT NULL,
    token bigint NOT NULL,
    seq bigint NOT NULL,
    stream_seq bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, token, seq)
);
CREATE INDEX ingest_marks_at ON ingest_marks USING brin (at);
-- fencing: the newest lease token that landed data for each device
CREATE TABLE device_fence (
    device text PRIMARY KEY,
    token bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL,
    device text NOT NULL,
    agent text NOT NULL,
    kind text NOT NULL,
    detail text NOT NULL DEFAULT '',
    UNIQUE (device, time, agent, kind)
);
CREATE TABLE config_backups (
    id bigserial PRIMARY KEY,
    time timestamptz NOT NULL,
    device text NOT NULL,
    agent text NOT NULL,
    token bigint NOT NULL,
    format text NOT NULL,
    content text NOT NULL,
    sha256 text NOT NULL,
    UNIQUE (device, time)
);
CREATE INDEX config_backups_device_time ON config_backups (device, time DESC);
-- a mirror of the NATS inventory, refreshed by the hub, for joins in SQL
CREATE TABLE devices (
    name text PRIMARY KEY,
    address text NOT NULL,
    protocol text NOT NULL,
    platform text NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    agent text,
    token bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

PLAIN_V1 = """
-- daily range partitions (points_pYYYYMMDD, states_pYYYYMMDD), created ahead and dropped by the hub
CREATE TABLE points (
    time timestamptz NOT NULL,
    series_id integer NOT NULL,
    value double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX points_series_time ON points (series_id, time);
CREATE TABLE states (
    time timestamptz NOT NULL,
    series_id integer NOT NULL,
    value text NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX states_series_time ON states (series_id, time);
"""

TIMESCALE_V1 = """
CREATE TABLE points (
    time timestamptz NOT NULL,
    series_id integer NOT NULL,
    value double precision NOT NULL
);
SELECT create_hypertable('points', by_range('time', INTERVAL '{chunk_hours} hours'));
CREATE INDEX points_series_time ON points (series_id, time DESC);
ALTER TABLE points SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id',
                        timescaledb.compress_orderby = 'time DESC');
CREATE TABLE states (
    time timestamptz NOT NULL,
    series_id integer NOT NULL,
    value text NOT NULL
);
SELECT create_hypertable('states', by_range('time', INTERVAL '{chunk_hours} hours'));
CREATE INDEX states_series_time ON states (series_id, time DESC);
ALTER TABLE states SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id',
                        timescaledb.compress_orderby = 'time DESC');
-- 1 minute and 1 hour rollups: sum and n re-aggregate avg exactly; first/last give counter increases
CREATE MATERIALIZED VIEW points_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id, time_bucket(INTERVAL '1 minute', time) AS bucket,
       avg(value) AS avg, min(value) AS min, max(value) AS max,
       first(value, time) AS first, last(value, time) AS last, sum(value) AS sum, count(*) AS n
FROM points GROUP BY series_id, bucket WITH NO DATA;
CREATE MATERIALIZED VIEW points_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(sum) / sum(n) AS avg, min(min) AS min, max(max) AS max,
       first(first, bucket) AS first, last(last, bucket) AS last, sum(sum) AS sum, sum(n)::bigint AS n
FROM points_1m GROUP BY series_id, time_bucket(INTERVAL '1 hour', bucket) WITH NO DATA;
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: str
    plain: str
    timescale: str

    def sql(self, backend: str, **params: object) -> str:
        extra = self.plain if backend == PLAIN else self.timescale.format(**params)
        return self.common + extra


def _package_sql(package: str) -> str:
    from importlib.resources import files

    return files(package).joinpath("schema.sql").read_text()


def _module_sql(module: str) -> str:
    import importlib

    return str(importlib.import_module(module).SCHEMA)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "narrow schema", COMMON_V1, PLAIN_V1, TIMESCALE_V1),
    # users, sessions, API tokens (hub/auth/schema.sql) and alerting (hub/alerts/schema.sql): the same on
    # both backends; the files are idempotent, so databases that ran them by hand migrate cleanly
    Migration(2, "hub users and tokens", _package_sql("swtel.hub.auth"), "", ""),
    Migration(3, "alerting", _package_sql("swtel.hub.alerts"), "", ""),
    Migration(4, "device facts and status", _module_sql("swtel.hub.devstatus"), "", ""),
    # fencing by lease history (hub/fencing.py) and dead letters (hub/deadletter.py); device_fence stays,
    # unused, so that an older hub of a rolling upgrade still runs
    Migration(5, "lease tenures and dead letters",
              _module_sql("swtel.hub.fencing") + _module_sql("swtel.hub.deadletter"), "", ""),
)


def timescale_policies(*, retention_days: int, compress_after_days: int, aggregate_retention_days: int) -> list[str]:
    """Policy statements, re-applied on every migrate (remove, then add) so settings changes take effect."""
    out: list[str] = []
    for table in ("points", "states"):
        out += [
            f"SELECT remove_compression_policy('{table}', if_exists => true)",
            f"SELECT add_compression_policy('{table}', INTERVAL '{compress_after_days} days')",
            f"SELECT remove_retention_policy('{table}', if_exists => true)",
            f"SELECT add_retention_policy('{table}', INTERVAL '{retention_days} days')",
        ]
    for view, start, end, every in (
        ("points_1m", "3 hours", "1 minute", "1 minute"),
        ("points_1h", "3 days", "1 hour", "30 minutes"),
    ):
        out += [
            f"SELECT remove_continuous_aggregate_policy('{view}', if_exists => true)",
            f"SELECT add_continuous_aggregate_policy('{view}', start_offset => INTERVAL '{start}', "
            f"end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{every}')",
            f"SELECT remove_retention_policy('{view}', if_exists => true)",
            f"SELECT add_retention_policy('{view}', INTERVAL '{aggregate_retention_days} days')",
        ]
    return out


# Job failures are surfaced, never assumed away (TimescaleDB 2.28.3 on PostgreSQL 15.20 is known to fail them).
TIMESCALE_JOB_STATS = """
SELECT j.job_id, j.proc_name, coalesce(j.hypertable_name, '') AS hypertable, s.last_run_status,
       s.total_runs, s.total_failures, s.last_run_started_at
FROM timescaledb_information.jobs j
JOIN timescaledb_information.job_stats s USING (job_id)
ORDER BY j.job_id
"""
