-- User dashboards (hub/api/dashboards.py). Applied by `swtel db migrate` (migration 5). Idempotent.
CREATE TABLE IF NOT EXISTS dashboards (
    id         bigserial PRIMARY KEY,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    owner      text,                       -- NULL: shared with every user; else the one user who sees it
    spec       jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1, -- bumped by every edit; a stale edit is refused (409)
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS dashboards_title ON dashboards (coalesce(owner, ''), lower(title));
