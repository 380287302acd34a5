/** D1 `tenant_resources`: what Shipyard provisioned for each project (migrations/0011). */
export interface TenantResourceRow {
  project_id: string;
  binding: string;
  kind: "d1" | "kv" | "r2";
  name: string;
  resource_id: string;
  created_at: number;
}

/** The project's resources, by binding name. */
export async function listResources(db: D1Database, projectId: string): Promise<TenantResourceRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM tenant_resources WHERE project_id = ? ORDER BY binding")
    .bind(projectId)
    .all<TenantResourceRow>();
  return results;
}

/** Records a resource unless the binding already has one (the first recorded stays: a retry keeps it). */
export async function recordResource(db: D1Database, row: TenantResourceRow): Promise<void> {
  await db
    .prepare(
      "INSERT INTO tenant_resources (project_id, binding, kind, name, resource_id, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, binding) DO NOTHING",
    )
    .bind(row.project_id, row.binding, row.kind, row.name, row.resource_id, row.created_at)
    .run();
}

/** Forgets a resource `down` deleted. */
export async function deleteResourceRow(db: D1Database, projectId: string, binding: string): Promise<void> {
  await db.prepare("DELETE FROM tenant_resources WHERE project_id = ? AND binding = ?").bind(projectId, binding).run();
}
