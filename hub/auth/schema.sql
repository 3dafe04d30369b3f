-- Hub authentication: users, server-side sessions, API tokens, and the shared CSRF secret.
-- Idempotent: safe to run at every hub start and from `swtel db migrate`.
-- Only hashes are stored: argon2 for passwords, SHA-256 for session ids and API tokens (both are
-- 256-bit random values, so a fast hash is enough and lookups stay one indexed query).

CREATE TABLE IF NOT EXISTS auth_users (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS auth_sessions (
    id_hash    bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_sessions_expires_at ON auth_sessions (expires_at);

CREATE TABLE IF NOT EXISTS auth_tokens (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    label      text NOT NULL DEFAULT '',
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Values every hub must share (the CSRF HMAC key), created once by whichever hub starts first.
CREATE TABLE IF NOT EXISTS auth_secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
);
