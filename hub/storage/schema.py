"""Schema texts for both backends, and the versioned migration list.

A migration is a version number, a name, and SQL per backend (``common`` runs on both). Versions are
applied in order, each in its own transaction, and recorded in ``schema_migrations``; re-running
``swtel db migrate`` applies nothing twice. Settings-dependent policies (TimescaleDB retention,
compression, refresh) are not migrations: :func:`timescale_policies` re-applies them on every migrate, so
a changed ``retention_days`` takes effect at the next ``swtel db migrate``.

The TimescaleDB texts are written against TimescaleDB 2.15+ (``by_range``, hierarchical continuous
aggregates, ``materialized_only``, ``job_errors``) and run by the test suite whenever the test database
offers TimescaleDB (tests/test_hub_storage.py, tests/test_hub_aggregates.py, tests/test_hub_db_status.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .query import counter_delta

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


# Retention per resolution (raw, 1 m, 1 h) on the plain backend: rollup tables with the same columns as
# the TimescaleDB continuous aggregates, filled and pruned by the elected hub's maintenance (plain.py).
PLAIN_V6 = """
CREATE TABLE points_1m (
    series_id integer NOT NULL,
    bucket timestamptz NOT NULL,
    avg double precision NOT NULL, min double precision NOT NULL, max double precision NOT NULL,
    first double precision NOT NULL, last double precision NOT NULL, sum double precision NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE INDEX points_1m_bucket ON points_1m USING brin (bucket);
CREATE TABLE points_1h (LIKE points_1m INCLUDING ALL);
"""

# Compression of the aggregates' materialized data (policies: timescale_policies).
TIMESCALE_V6 = """
ALTER MATERIALIZED VIEW points_1m SET (timescaledb.compress = true);
ALTER MATERIALIZED VIEW points_1h SET (timescaledb.compress = true);
"""


# Exact counter rates from aggregates (docs/STORAGE.md, "Which answers are exact where"). A bucket's
# *counter summary* is what a reset-aware rate needs from it: n samples, the first two and last two values
# (``first``, ``second``, ``last2``, ``last``; ``second``/``last2`` NULL when n = 1) and ``inc``, the sum of
# the increases of its samples 3 … n, each computed from the two samples before it, which lie in the same
# bucket. The increases of samples 1 and 2 need samples of the previous bucket, which the query joins
# (hub/storage/query.py). Summaries concatenate exactly (``swtel_counter_add``: the increases at the seam
# are computed from the values kept), so 1 h buckets are built from 1 m ones, and a rate over any step
# built from 1 m / 1 h buckets equals the rate from raw points, resets and wraps included.
# Transition functions in PL/pgSQL (its simple-expression path: a few µs a row; a SQL-language function
# is not inlined as a transition and cost ~60 µs a row). Their bodies name no type or function:
# TimescaleDB refreshes with search_path = pg_catalog, and names in a body resolve at run time.
COMMON_V8 = f"""
CREATE TYPE swtel_counter AS (n bigint, first float8, second float8, last2 float8, last float8, inc float8);
-- state a, then the next (later) sample; input in time order
CREATE FUNCTION swtel_counter_step(a swtel_counter, v float8) RETURNS swtel_counter
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL THEN
        RETURN a;
    END IF;
    IF a.n IS NULL THEN
        a.n := 1; a.first := v; a.last := v; a.inc := 0;
        RETURN a;
    END IF;
    IF a.n >= 2 THEN  -- sample 3 or later: both predecessors are in the bucket
        a.inc := a.inc + ({counter_delta('v', 'a.last', 'a.last2')});
    ELSE
        a.second := v;
    END IF;
    a.last2 := a.last; a.last := v; a.n := a.n + 1;
    RETURN a;
END $$;
-- state a, then the summary of the next (later) bucket; input in time order
CREATE FUNCTION swtel_counter_add(a swtel_counter, n bigint, first float8, second float8, last2 float8,
                                  last float8, inc float8) RETURNS swtel_counter
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF n IS NULL OR n < 1 THEN
        RETURN a;
    END IF;
    IF a.n IS NULL THEN
        a.n := n; a.first := first; a.second := second; a.last2 := last2; a.last := last; a.inc := inc;
        RETURN a;
    END IF;
    -- the next bucket's samples 1 and 2 are samples a.n + 1 and a.n + 2 here: 3 or later unless a.n = 1
    a.inc := a.inc + inc
             + CASE WHEN a.n >= 2 THEN ({counter_delta('first', 'a.last', 'a.last2')}) ELSE 0 END
             + CASE WHEN n >= 2 THEN ({counter_delta('second', 'first', 'a.last')}) ELSE 0 END;
    IF a.n < 2 THEN
        a.second := first;
    END IF;
    a.last2 := CASE WHEN n >= 2 THEN last2 ELSE a.last END;
    a.last := last;
    a.n := a.n + n;
    RETURN a;
END $$;
CREATE AGGREGATE swtel_counter_agg(float8) (SFUNC = swtel_counter_step, STYPE = swtel_counter);
CREATE AGGREGATE swtel_counter_agg(bigint, float8, float8, float8, float8, float8) (
    SFUNC = swtel_counter_add, STYPE = swtel_counter);
"""

# one raw sample as a summary, and a summary's columns, for swtel_counter_agg (ORDER BY time / bucket)
COUNTER_OF_POINTS = "swtel_counter_agg(value ORDER BY time)"
COUNTER_OF_BUCKETS = "swtel_counter_agg(n, first, second, last2, last, inc ORDER BY bucket)"

# The rollup rows keep their place; the summaries of the buckets raw points still cover are computed here
# (1 h only where every 1 m row has one). Older buckets keep none: rate leaves them out.
PLAIN_V8 = f"""
ALTER TABLE points_1m ADD COLUMN second double precision, ADD COLUMN last2 double precision,
                      ADD COLUMN inc double precision;
ALTER TABLE points_1h ADD COLUMN second double precision, ADD COLUMN last2 double precision,
                      ADD COLUMN inc double precision;
UPDATE points_1m r SET second = (s.c).second, last2 = (s.c).last2, inc = (s.c).inc
FROM (SELECT series_id, date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
             {COUNTER_OF_POINTS} AS c
      FROM points GROUP BY 1, 2) s
WHERE r.series_id = s.series_id AND r.bucket = s.bucket;
UPDATE points_1h r SET second = (s.c).second, last2 = (s.c).last2, inc = (s.c).inc
FROM (SELECT series_id, date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
             {COUNTER_OF_BUCKETS} AS c
      FROM points_1m GROUP BY 1, 2 HAVING bool_and(inc IS NOT NULL)) s
WHERE r.series_id = s.series_id AND r.bucket = s.bucket;
"""

# TimescaleDB cannot add columns to a continuous aggregate: both are created again beside the old ones
# (renamed), the refresh policies (re-added by every migrate) re-materialize the range raw points still
# cover, and the old buckets older than that (kept only in the aggregates: retention per resolution) are
# copied into the new aggregates' materialized data, without a counter summary (rate leaves them out).
# They show once the first refresh has set the new watermark (within a minute).
TIMESCALE_V8 = f"""
ALTER MATERIALIZED VIEW points_1h RENAME TO points_1h_v7;
ALTER MATERIALIZED VIEW points_1m RENAME TO points_1m_v7;
CREATE MATERIALIZED VIEW points_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id, time_bucket(INTERVAL '1 minute', time) AS bucket,
       avg(value) AS avg, min(value) AS min, max(value) AS max,
       first(value, time) AS first, last(value, time) AS last, sum(value) AS sum, count(*) AS n,
       ({COUNTER_OF_POINTS}).second AS second, ({COUNTER_OF_POINTS}).last2 AS last2,
       ({COUNTER_OF_POINTS}).inc AS inc
FROM points GROUP BY series_id, bucket WITH NO DATA;
CREATE MATERIALIZED VIEW points_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(sum) / sum(n) AS avg, min(min) AS min, max(max) AS max,
       first(first, bucket) AS first, last(last, bucket) AS last, sum(sum) AS sum, sum(n)::bigint AS n,
       ({COUNTER_OF_BUCKETS}).second AS second, ({COUNTER_OF_BUCKETS}).last2 AS last2,
       ({COUNTER_OF_BUCKETS}).inc AS inc
FROM points_1m GROUP BY series_id, time_bucket(INTERVAL '1 hour', bucket) WITH NO DATA;
ALTER MATERIALIZED VIEW points_1m SET (timescaledb.compress = true);
ALTER MATERIALIZED VIEW points_1h SET (timescaledb.compress = true);
DO $$
DECLARE
    v text;
    mat text;
BEGIN
    FOREACH v IN ARRAY ARRAY['points_1m', 'points_1h'] LOOP
        SELECT format('%I.%I', h.schema_name, h.table_name) INTO STRICT mat
        FROM _timescaledb_catalog.continuous_agg c
        JOIN _timescaledb_catalog.hypertable h ON h.id = c.mat_hypertable_id
        WHERE c.user_view_name = v AND c.user_view_schema = current_schema();
        -- below the refresh windows' start (timescale_policies): 1 m retention_days, 1 h one day more
        EXECUTE format('INSERT INTO %s (series_id, bucket, avg, min, max, first, last, sum, n) '
                       'SELECT series_id, bucket, avg, min, max, first, last, sum, n FROM %I '
                       'WHERE bucket < now() - make_interval(days => %s)',
                       mat, v || '_v7', {{retention_days}} + (v = 'points_1h')::int);
    END LOOP;
END $$;
DROP MATERIALIZED VIEW points_1h_v7;
DROP MATERIALIZED VIEW points_1m_v7;
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


def _package_sql(package: str, name: str = "schema.sql") -> str:
    from importlib.resources import files

    return files(package).joinpath(name).read_text()


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
    # (read through swtel.hub, not swtel.hub.api: importing that package loads its routes, which import storage)
    Migration(5, "user dashboards", _package_sql("swtel.hub", "api/dashboards.sql"), "", ""),
    Migration(6, "aggregates per resolution", "", PLAIN_V6, TIMESCALE_V6),
    # fencing by lease history (hub/fencing.py) and dead letters (hub/deadletter.py); device_fence stays,
    # unused, so that an older hub of a rolling upgrade still runs
    Migration(7, "lease tenures and dead letters",
              _module_sql("swtel.hub.fencing") + _module_sql("swtel.hub.deadletter"), "", ""),
    # counter summaries in the 1 m / 1 h aggregates: exact rates beyond raw retention (COMMON_V8 above)
    Migration(8, "counter summaries in aggregates", COMMON_V8, PLAIN_V8, TIMESCALE_V8),
)


def timescale_policies(*, retention_days: int, compress_after_days: int, retention_1m_days: int,
                       retention_1h_days: int, aggregate_lag_s: float = 300.0,
                       batched_refresh: bool = True) -> list[str]:
    """Policy statements, re-applied on every migrate (remove, then add) so settings changes take effect.

    The refresh windows reach back as far as ingest accepts samples (``retention_days``): TimescaleDB
    shows a bucket below the watermark only as materialized, so a sample arriving later than the window's
    start would never reach the aggregate. A refresh re-materializes only invalidated ranges, so a wide
    window costs nothing while no late data arrives. Aggregates are compressed like raw chunks (TimescaleDB
    2.28 refreshes compressed aggregate ranges)."""
    out: list[str] = []
    for table in ("points", "states"):
        out += [
            f"SELECT remove_compression_policy('{table}', if_exists => true)",
            f"SELECT add_compression_policy('{table}', INTERVAL '{compress_after_days} days')",
            f"SELECT remove_retention_policy('{table}', if_exists => true)",
            f"SELECT add_retention_policy('{table}', INTERVAL '{retention_days} days')",
        ]
    keep = {"points_1m": retention_1m_days, "points_1h": retention_1h_days}
    # end_offset: a bucket is materialized only once it ended ``aggregate_lag_s`` ago (like the plain rollups):
    # newer samples are read from raw points by the real-time aggregate, so a sample arriving that late still
    # shows at once
    lag = int(aggregate_lag_s)
    # TimescaleDB 2.19+ refreshes a window in batches, newest first by default: the watermark jumps to the
    # window's end after the first batch, and until the older batches are done a real-time aggregate shows
    # nothing for them (measured on 2.28.3: 101 of 108 queries during a 25 h backlog refresh were wrong).
    # Oldest first, the watermark only passes materialized buckets.
    order = ", refresh_newest_first => false" if batched_refresh else ""
    refresh = (("points_1m", f"{retention_days} days", f"{max(60, lag)} seconds", "1 minute"),
               ("points_1h", f"{retention_days + 1} days", f"{max(3600, lag)} seconds", "30 minutes"))
    for view, start, end, every in refresh:
        out += [
            f"SELECT remove_continuous_aggregate_policy('{view}', if_exists => true)",
            f"SELECT add_continuous_aggregate_policy('{view}', start_offset => INTERVAL '{start}', "
            f"end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{every}'{order})",
            f"SELECT remove_compression_policy('{view}', if_exists => true)",
            f"SELECT add_compression_policy('{view}', compress_after => INTERVAL '{compress_after_days} days')",
            f"SELECT remove_retention_policy('{view}', if_exists => true)",
            f"SELECT add_retention_policy('{view}', INTERVAL '{keep[view]} days')",
        ]
    return out


# Job health from each job's latest runs (TimescaleDB 2.15+). ``consecutive_failures`` is 0 once a job
# succeeds again, so one transient failure does not leave the hub "degraded"; ``job_errors`` keeps each
# failed run's message. Only the policies swtel creates (job ids from 1000) are reported: the extension's
# own jobs (telemetry, history retention) are not this project's to watch.
TIMESCALE_JOBS = """
SELECT j.job_id, j.application_name AS name, j.proc_name, coalesce(j.hypertable_name, '') AS target,
       s.last_run_status, s.last_run_started_at, s.last_successful_finish, j.next_start,
       coalesce(s.total_runs, 0) AS total_runs, coalesce(s.total_failures, 0) AS total_failures,
       coalesce(st.consecutive_failures, 0) AS consecutive_failures, e.err_message AS last_error
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN _timescaledb_internal.bgw_job_stat st ON st.job_id = j.job_id
LEFT JOIN LATERAL (SELECT err_message FROM timescaledb_information.job_errors x WHERE x.job_id = j.job_id
                   ORDER BY x.start_time DESC LIMIT 1) e ON true
WHERE j.job_id >= 1000
ORDER BY j.job_id
"""
