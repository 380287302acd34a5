-- Resources Shipyard provisioned for a tenant project (issue 14): one row per (project, binding),
-- written on the first deploy that declares the binding and kept across deploys and rollbacks, so
-- every version of the project is bound to the same database.
CREATE TABLE IF NOT EXISTS tenant_resources (
  project_id  TEXT NOT NULL,
  binding     TEXT NOT NULL,
  kind        TEXT NOT NULL,   -- 'd1'
  name        TEXT NOT NULL,   -- the platform's resource name (shipyard-<project>-<binding>)
  resource_id TEXT NOT NULL,   -- the platform's id (D1 uuid in production, object id locally)
  created_at  INTEGER NOT NULL, -- epoch ms
  PRIMARY KEY (project_id, binding)
);
