-- Delta sync, client-chosen task ids, completedAt, more list orders, and the account lifecycle.
--
-- Expand only: the previous release keeps running beside this schema during a rolling deploy.
-- Its INSERT/UPDATE/DELETE statements work unchanged, and the triggers below keep the change
-- counter, the tombstones and completed_at right for its writes too (and for an operator's psql).
--
-- Locks: the runner applies this file in one transaction, and each lock is held until it
-- commits. So nothing here rewrites or backfills a table (completed_at and session ids of older
-- rows are filled lazily), users is never altered (see task_change_counters), and the only work
-- that grows with the data comes first: index builds on tasks, under a SHARE lock (task writes
-- wait; reads and sign-ins go on). Then the ALTERs of tasks and sessions take ACCESS EXCLUSIVE
-- locks, briefly but for the rest of the file; the change_seq index is built under that of tasks.
-- Measured on 1,000,000 tasks (2 cores, under the previous release's traffic): 3.3-3.8 s; task
-- writes waited up to 3.7 s, task reads 1.5 s, sign-ins not at all; no errors. Past about a
-- million tasks (writes would near DATABASE_STATEMENT_TIMEOUT_MS), run this first, outside a
-- transaction (9.9 s at 1,000,000 tasks; nothing waits for it), and the IF NOT EXISTS below skip
-- the builds; the file then took 45 ms:
--   ALTER TABLE tasks ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0;
--   CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_id_id_key ON tasks (user_id, id);
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_updated_idx
--     ON tasks (user_id, updated_at DESC, id DESC);
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_due_idx
--     ON tasks (user_id, due_at ASC NULLS LAST, id ASC);
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_change_seq_idx
--     ON tasks (user_id, change_seq, id);

-- Task ids become unique per user (the primary key, below): a client-chosen id can only collide
-- with the caller's own tasks, so creating one reveals nothing about other users' ids. Every
-- query already filters by user_id. And each list order gets the index it walks.
CREATE UNIQUE INDEX IF NOT EXISTS tasks_user_id_id_key ON tasks (user_id, id);
CREATE INDEX IF NOT EXISTS tasks_user_updated_idx ON tasks (user_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_user_due_idx ON tasks (user_id, due_at ASC NULLS LAST, id ASC);

-- Rows written before this migration keep change_seq 0: a full sync returns them (ordered by
-- change_seq, then id) and any later write stamps them with a real value. completed_at of tasks
-- completed before it stays NULL and reads as their updated_at (the best knowledge of when; see
-- tasks/repository.ts), until their next write stores exactly that.
ALTER TABLE tasks
  ADD COLUMN IF NOT EXISTS change_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN completed_at timestamptz,
  -- SHA-256 of a create request that chose its id, so a retry with the same body replays.
  ADD COLUMN create_fingerprint bytea;
ALTER TABLE tasks
  DROP CONSTRAINT tasks_pkey,
  ADD CONSTRAINT tasks_pkey PRIMARY KEY USING INDEX tasks_user_id_id_key;
-- Delta sync walks a user's changes in counter order.
CREATE INDEX IF NOT EXISTS tasks_user_change_seq_idx ON tasks (user_id, change_seq, id);

-- The per-user change counter, in a table of its own rather than a column of users: ALTER TABLE
-- users would lock users against every query of the previous release, and one of its writers
-- holds users (a foreign key check) while it waits for tasks: a deadlock with this migration. A
-- table that references users takes a lock that neither reads nor foreign key checks wait for.
-- (And a task write updates this narrow row, not the user's.) A user's row appears with their
-- first task write; change_seq is the number of the last change (0 without one), and
-- purged_change_seq how far their tombstones have been purged.
CREATE TABLE task_change_counters (
  user_id           uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  change_seq        bigint NOT NULL,
  purged_change_seq bigint NOT NULL DEFAULT 0
);

-- What a syncing client needs to learn of a deleted task. A tombstone also keeps its id from
-- being created again (stamp_task_change refuses it), so a late retry cannot resurrect the task.
CREATE TABLE task_tombstones (
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  task_id    uuid NOT NULL,
  change_seq bigint NOT NULL,
  deleted_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, task_id)
);
CREATE INDEX task_tombstones_user_change_seq_idx ON task_tombstones (user_id, change_seq, task_id);
CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);

-- Sessions get an id of their own (listing and revoking them never shows a token or its hash)
-- and a last-use time; the previous release's INSERT leaves both to their defaults. Older
-- sessions get an id when first listed and read their creation as their last use (NULL): no
-- rewrite of the table here. Sessions are looked up by user first, so the id needs no index.
ALTER TABLE sessions
  ADD COLUMN id uuid,
  ADD COLUMN last_used_at timestamptz;
ALTER TABLE sessions
  ALTER COLUMN id SET DEFAULT gen_random_uuid(),
  ALTER COLUMN last_used_at SET DEFAULT now();

-- The next value of a user's change counter, or NULL when the user is gone (an account being
-- deleted: its cascades must not fail here).
--
-- Why this makes delta sync exact: the UPDATE (or, for a user's first change, the INSERT) takes
-- the counter row's lock and keeps it until the writing transaction ends. A second writer of the
-- same user waits for that lock and then reads the committed counter (READ COMMITTED re-reads the
-- newest row version; a conflicting INSERT waits for the first one's outcome, then updates), so
-- it gets a larger value only after the first has committed; a writer that rolls back gives its
-- value back. Hence, per user, counter order is commit order, and a reader's snapshot that shows
-- counter value N also shows every change numbered N or less. A reader that takes the counter
-- and the changes in one statement (one snapshot) and resumes after N can never skip a change
-- that commits later: it will be numbered above N. A timestamp or a sequence taken at write
-- time has no such property: a transaction can take an earlier value and commit after a reader
-- has passed it.
CREATE FUNCTION next_change_seq(p_user_id uuid) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  seq bigint;
BEGIN
  UPDATE task_change_counters SET change_seq = change_seq + 1
  WHERE user_id = p_user_id
  RETURNING change_seq INTO seq;
  IF FOUND THEN
    RETURN seq;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM users WHERE id = p_user_id) THEN
    RETURN NULL;
  END IF;
  INSERT INTO task_change_counters AS c (user_id, change_seq) VALUES (p_user_id, 1)
  ON CONFLICT (user_id) DO UPDATE SET change_seq = c.change_seq + 1
  RETURNING change_seq INTO seq;
  RETURN seq;
END;
$$;

-- BEFORE INSERT OR UPDATE on tasks: stamp the row with the user's next counter value, keep
-- completed_at in step with completed, and refuse to create an id that has a live tombstone.
CREATE FUNCTION stamp_task_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  seq bigint;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
    -- Moved to another user (only an operator does this): the old owner sees a deletion.
    seq := next_change_seq(OLD.user_id);
    IF seq IS NOT NULL THEN
      INSERT INTO task_tombstones (user_id, task_id, change_seq, deleted_at)
      VALUES (OLD.user_id, OLD.id, seq, date_trunc('milliseconds', clock_timestamp()))
      ON CONFLICT (user_id, task_id)
        DO UPDATE SET change_seq = EXCLUDED.change_seq, deleted_at = EXCLUDED.deleted_at;
    END IF;
  END IF;
  seq := next_change_seq(NEW.user_id);
  -- No user row: leave the row as it is and let the foreign key report the missing user.
  IF seq IS NOT NULL THEN
    NEW.change_seq := seq;
  END IF;
  IF TG_OP = 'INSERT' OR NEW.user_id IS DISTINCT FROM OLD.user_id OR NEW.id IS DISTINCT FROM OLD.id
  THEN
    -- Checked after taking the user's lock, so a delete committed meanwhile is seen.
    IF EXISTS (SELECT 1 FROM task_tombstones WHERE user_id = NEW.user_id AND task_id = NEW.id) THEN
      RAISE EXCEPTION 'task % was deleted', NEW.id
        USING ERRCODE = 'TK001',
              HINT = 'Delete its row from task_tombstones first to create this id again.';
    END IF;
  END IF;
  IF NOT NEW.completed THEN
    NEW.completed_at := NULL;
  ELSIF TG_OP = 'INSERT' OR NOT OLD.completed THEN
    NEW.completed_at := NEW.updated_at;
  ELSIF OLD.completed_at IS NULL THEN
    -- Completed before this migration: store what it read as until now.
    NEW.completed_at := OLD.updated_at;
  END IF;
  RETURN NEW;
END;
$$;

-- AFTER DELETE on tasks: leave a tombstone numbered by the user's counter. Skipped while the
-- account itself is being deleted (its tombstones go with it): by a user row that is already
-- gone (ON DELETE CASCADE from users, e.g. in psql), or by the transaction that deletes the
-- account (`tasks.deleting_user`, set locally by the account deletion).
CREATE FUNCTION record_task_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  seq bigint;
BEGIN
  IF current_setting('tasks.deleting_user', true) = OLD.user_id::text
     OR NOT EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
    RETURN NULL;
  END IF;
  seq := next_change_seq(OLD.user_id);
  INSERT INTO task_tombstones (user_id, task_id, change_seq, deleted_at)
  VALUES (OLD.user_id, OLD.id, seq, date_trunc('milliseconds', clock_timestamp()))
  ON CONFLICT (user_id, task_id)
    DO UPDATE SET change_seq = EXCLUDED.change_seq, deleted_at = EXCLUDED.deleted_at;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_stamp_change
  BEFORE INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION stamp_task_change();
CREATE TRIGGER tasks_record_deletion
  AFTER DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION record_task_deletion();
