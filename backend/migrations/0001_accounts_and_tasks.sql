-- Accounts, sessions (bearer tokens) and tasks. Timestamps are kept at millisecond precision so
-- that what clients see (JSON, JavaScript dates) is exactly what keyset pagination compares.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp())
);
-- Emails are stored normalised (trimmed, lower case); the index makes uniqueness case-blind anyway.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
  -- SHA-256 of the bearer token: a database leak does not leak usable tokens.
  token_hash bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE tasks (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title      text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  notes      text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 10000),
  completed  boolean NOT NULL DEFAULT false,
  due_at     timestamptz,
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  updated_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  version    integer NOT NULL DEFAULT 1
);
-- Keyset pagination: newest first, per user, optionally filtered by completion.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_user_completed_created_idx ON tasks (user_id, completed, created_at DESC, id DESC);

CREATE TABLE idempotency_keys (
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key          text NOT NULL,
  request_hash bytea NOT NULL,
  status       integer,
  location     text,
  body         jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
