-- Per-project deploy signing secrets (issue 13): a project's deploys must be signed with its own
-- Standard Webhooks secret. Created when the project's first deploy (signed with the shared
-- WEBHOOK_SECRET) is accepted, replaced by a rotation. The secret is never logged, never audited and
-- never answered except by the creation and the rotation that made it.
CREATE TABLE IF NOT EXISTS project_deploy_secrets (
  project_id TEXT PRIMARY KEY,
  secret TEXT NOT NULL,                 -- whsec_<base64 of 32 random bytes>
  created_at INTEGER NOT NULL,          -- epoch ms
  created_by_webhook_id TEXT,           -- the delivery that created it (its retries repeat the answer, secret included, for 24 h); NULL once the secret signed a deploy or was rotated
  rotated_at INTEGER                    -- epoch ms of the latest rotation; NULL = the secret created with the project
);
