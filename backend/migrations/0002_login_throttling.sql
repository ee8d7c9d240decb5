-- Login throttling that holds across replicas, and the clients an account has signed in from
-- before (OWASP's "device cookie", adapted to an API), whose owner another client's failures
-- must not lock out. Additive: release 0.1.0 runs unchanged beside it.

-- Fixed-window counters, one row per key (an address prefix, an account, a device).
CREATE TABLE rate_limit_counters (
  key          text PRIMARY KEY,
  window_start timestamptz NOT NULL,
  hits         integer NOT NULL
);
CREATE INDEX rate_limit_counters_window_start_idx ON rate_limit_counters (window_start);

-- A device token is issued on a successful sign-in and sent back by that client on its next ones.
-- Only its SHA-256 is stored, like session tokens.
CREATE TABLE known_devices (
  token_hash   bytea PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX known_devices_user_id_idx ON known_devices (user_id);
CREATE INDEX known_devices_last_used_at_idx ON known_devices (last_used_at);

-- Client addresses (IPv4, or an IPv6 prefix) an account has signed in from successfully.
CREATE TABLE known_addresses (
  user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  address         text NOT NULL,
  last_success_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, address)
);
CREATE INDEX known_addresses_last_success_at_idx ON known_addresses (last_success_at);
