-- Tenant projects: one platform script each (script name = project id).
CREATE TABLE IF NOT EXISTS projects (
  id                 TEXT PRIMARY KEY,
  status             TEXT NOT NULL,          -- active | deleted (soft delete by `down`)
  do_migration_tag   TEXT,                   -- live Durable Object migration tag
  do_classes         TEXT NOT NULL,          -- JSON array of declared Durable Object classes
  do_bindings        TEXT NOT NULL,          -- JSON array of {name, class_name} as last deployed
  current_deploy_id  TEXT,
  previous_deploy_id TEXT,                   -- what a rollback goes back to
  created_at         INTEGER NOT NULL,       -- epoch ms
  updated_at         INTEGER NOT NULL,
  deleted_at         INTEGER
);

-- Every deploy, rollback and down, with its outcome.
CREATE TABLE IF NOT EXISTS deploys (
  id               TEXT PRIMARY KEY,         -- deploy id = Workflow instance id
  project_id       TEXT NOT NULL,
  kind             TEXT NOT NULL,            -- deploy | rollback | down
  status           TEXT NOT NULL,            -- queued | running | complete | errored
  webhook_id       TEXT,                     -- the delivery that started it (deploys only)
  source_deploy_id TEXT,                     -- rollback: the deploy whose code it restores
  version_id       TEXT,                     -- platform version uploaded
  migration        TEXT,                     -- JSON: the migration plan sent, or null
  error            TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deploys_project ON deploys (project_id, created_at);

-- One row per workflow step of a deploy: state, attempts, timing, small output.
CREATE TABLE IF NOT EXISTS deploy_steps (
  deploy_id   TEXT NOT NULL,
  position    INTEGER NOT NULL,
  name        TEXT NOT NULL,
  state       TEXT NOT NULL,                 -- running | complete | errored
  attempts    INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER,
  output      TEXT,                          -- JSON
  error       TEXT,
  PRIMARY KEY (deploy_id, name)
);

-- Durable Object bindings removed by usage enforcement, to restore later.
CREATE TABLE IF NOT EXISTS do_enforcement (
  project_id       TEXT PRIMARY KEY,
  removed_bindings TEXT NOT NULL,            -- JSON array of {type, name, class_name}
  wall_ms          INTEGER NOT NULL,         -- usage that triggered it (24 h)
  threshold_ms     INTEGER NOT NULL,
  enforced_at      INTEGER NOT NULL
);

-- Audit trail of admin actions, deploys and enforcement transitions.
CREATE TABLE IF NOT EXISTS audit_log (
  id         TEXT PRIMARY KEY,
  at         INTEGER NOT NULL,               -- epoch ms
  type       TEXT NOT NULL,                  -- e.g. deploy.completed, enforcement.applied
  actor      TEXT NOT NULL,                  -- admin:<fingerprint>, webhook, system
  project_id TEXT,
  details    TEXT NOT NULL                   -- JSON
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (at);
