-- Alerting tables. Idempotent: safe to run at every start until the hub's versioned migrations take it over.

CREATE TABLE IF NOT EXISTS alert_channels (
    name        text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    -- webhook/slack: {"url": …}; email: {"to": [...], "from": …, "host": …, "port": …, "username": …,
    -- "password_env": NAME, "starttls": bool}. Secrets are never stored: a value "env:NAME" or password_env
    -- names an environment variable read by the hub when it sends.
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS alert_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    device      text,
    tags        jsonb NOT NULL DEFAULT '{}',
    path        text NOT NULL,
    condition   text NOT NULL CHECK (condition IN ('above', 'below', 'absent', 'rate_increase')),
    threshold   double precision NOT NULL,
    for_s       double precision NOT NULL DEFAULT 0,
    cooldown_s  double precision NOT NULL DEFAULT 600,
    severity    text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    channels    text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (rule, device, path) that ever had its condition true. Every change is a conditional
-- UPDATE ... WHERE state = <seen> AND version = <seen>, so of two evaluators only one wins a transition.
CREATE TABLE IF NOT EXISTS alert_instances (
    id              bigserial PRIMARY KEY,
    rule_id         bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    device          text NOT NULL,
    path            text NOT NULL,
    state           text NOT NULL CHECK (state IN ('ok', 'pending', 'firing', 'resolved')),
    since           timestamptz NOT NULL,          -- when the current state began
    value           double precision,              -- the reading behind the last transition
    fired_at        timestamptz,
    resolved_at     timestamptz,
    notified_at     timestamptz,                   -- last firing notification (for the cooldown)
    notified        boolean NOT NULL DEFAULT false, -- this episode's firing was notified
    acknowledged    boolean NOT NULL DEFAULT false,
    acked_by        text,
    acked_at        timestamptz,
    version         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule_id, device, path)
);
CREATE INDEX IF NOT EXISTS alert_instances_state ON alert_instances (state) WHERE state <> 'ok';

-- Every transition and acknowledgement, kept after a rule is removed (rule name copied, no foreign key).
CREATE TABLE IF NOT EXISTS alert_history (
    id          bigserial PRIMARY KEY,
    instance_id bigint NOT NULL,
    rule_id     bigint NOT NULL,
    rule_name   text NOT NULL,
    device      text NOT NULL,
    path        text NOT NULL,
    severity    text NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,   -- a state, or 'acknowledged'
    instance_version bigint NOT NULL,  -- the instance's version this row moved it away from
    value       double precision,
    at          timestamptz NOT NULL,
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alert_history_at ON alert_history (at DESC);
CREATE INDEX IF NOT EXISTS alert_history_instance ON alert_history (instance_id, at DESC);
-- A second guard behind the conditional UPDATE: one transition out of one (instance, version), ever.
CREATE UNIQUE INDEX IF NOT EXISTS alert_history_once ON alert_history (instance_id, instance_version);

-- Notifications to send, written in the same transaction as the transition that caused them.
CREATE TABLE IF NOT EXISTS alert_outbox (
    id              bigserial PRIMARY KEY,
    history_id      bigint NOT NULL,
    channel         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('firing', 'resolved')),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (history_id, channel)
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
