/**
 * D1 access for the per-project deploy signing secrets (`project_deploy_secrets`,
 * migrations/0010_project_deploy_secrets.sql). A secret is read here to verify a deploy and written
 * here at creation and rotation; callers must never log it, audit it or answer it except right
 * after creating or rotating it.
 */

export interface DeploySecretRow {
  project_id: string;
  secret: string;
  created_at: number;
  /**
   * The delivery whose acceptance created the secret, while its retries may repeat it; NULL once
   * the secret has signed a deploy or been rotated.
   */
  created_by_webhook_id: string | null;
  rotated_at: number | null;
}

/** The project's deploy secret, or null when the project has none yet (its first deploy creates it). */
export async function getDeploySecret(db: D1Database, projectId: string): Promise<DeploySecretRow | null> {
  return db
    .prepare(
      "SELECT project_id, secret, created_at, created_by_webhook_id, rotated_at FROM project_deploy_secrets WHERE project_id = ?",
    )
    .bind(projectId)
    .first<DeploySecretRow>();
}

/**
 * Gives the project `secret` unless it already has one, and answers the row that holds after the
 * insert: `created_by_webhook_id === webhookId` means this delivery's secret stands (created now,
 * or by an earlier attempt of the same delivery); anything else means another delivery won.
 */
export async function claimDeploySecret(
  db: D1Database,
  claim: { projectId: string; secret: string; webhookId: string },
  now: number = Date.now(),
): Promise<DeploySecretRow> {
  const [, read] = await db.batch<DeploySecretRow>([
    db
      .prepare(
        `INSERT INTO project_deploy_secrets (project_id, secret, created_at, created_by_webhook_id, rotated_at)
         VALUES (?, ?, ?, ?, NULL) ON CONFLICT(project_id) DO NOTHING`,
      )
      .bind(claim.projectId, claim.secret, now, claim.webhookId),
    db
      .prepare(
        "SELECT project_id, secret, created_at, created_by_webhook_id, rotated_at FROM project_deploy_secrets WHERE project_id = ?",
      )
      .bind(claim.projectId),
  ]);
  const row = read?.results[0];
  if (!row) throw new Error(`project_deploy_secrets has no row for ${claim.projectId} after the insert`);
  return row;
}

/**
 * Replaces the project's secret (or gives it one: a project deployed before per-project secrets).
 * The creating delivery loses its grace: a retry of it, signed with the shared secret, is refused.
 */
export function rotateDeploySecretStatement(
  db: D1Database,
  projectId: string,
  secret: string,
  now: number = Date.now(),
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO project_deploy_secrets (project_id, secret, created_at, created_by_webhook_id, rotated_at)
       VALUES (?, ?, ?, NULL, ?)
       ON CONFLICT(project_id) DO UPDATE SET secret = excluded.secret, created_by_webhook_id = NULL, rotated_at = excluded.rotated_at`,
    )
    .bind(projectId, secret, now, now);
}

/**
 * Ends the creating delivery's grace: once the project's own secret has signed a deploy, its owner
 * holds it, and a retry of the creating delivery (signed with the shared secret) no longer repeats
 * it. A no-op after the first time.
 */
export async function endCreationGrace(db: D1Database, projectId: string): Promise<void> {
  await db
    .prepare(
      "UPDATE project_deploy_secrets SET created_by_webhook_id = NULL WHERE project_id = ? AND created_by_webhook_id IS NOT NULL",
    )
    .bind(projectId)
    .run();
}
