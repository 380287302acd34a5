import type { DeployKind, ProjectStatus } from "../schemas/deploy.schema.ts";
import { fault } from "./faults.ts";

/**
 * D1 access for projects, deploys and their steps (tables in migrations/0004_deploys.sql). Every
 * write here is idempotent (set to a value, upsert, or insert-if-absent) because workflow steps
 * and queue consumers may run more than once.
 */

export type DeployStatus = "queued" | "running" | "complete" | "errored";

export interface DeployRow {
  id: string;
  project_id: string;
  kind: DeployKind;
  status: DeployStatus;
  webhook_id: string | null;
  source_deploy_id: string | null;
  version_id: string | null;
  migration: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export interface ProjectRow {
  id: string;
  status: "active" | "deleted";
  do_migration_tag: string | null;
  do_classes: string;
  do_bindings: string;
  current_deploy_id: string | null;
  previous_deploy_id: string | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface StepRow {
  name: string;
  state: "running" | "complete" | "errored";
  attempts: number;
  started_at: number | null;
  finished_at: number | null;
  output: string | null;
  error: string | null;
}

/** Records a requested deploy (insert-if-absent: a retried request keeps the first row). */
export function insertDeployStatement(
  db: D1Database,
  deploy: {
    id: string;
    projectId: string;
    kind: DeployKind;
    webhookId?: string | null;
    sourceDeployId?: string | null;
  },
  now: number = Date.now(),
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO deploys (id, project_id, kind, status, webhook_id, source_deploy_id, created_at, updated_at)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
    )
    .bind(deploy.id, deploy.projectId, deploy.kind, deploy.webhookId ?? null, deploy.sourceDeployId ?? null, now, now);
}

export async function getDeploy(db: D1Database, id: string): Promise<DeployRow | null> {
  return db.prepare("SELECT * FROM deploys WHERE id = ?").bind(id).first<DeployRow>();
}

export async function getDeploySteps(db: D1Database, id: string): Promise<StepRow[]> {
  const { results } = await db
    .prepare(
      "SELECT name, state, attempts, started_at, finished_at, output, error FROM deploy_steps WHERE deploy_id = ? ORDER BY position",
    )
    .bind(id)
    .all<StepRow>();
  return results;
}

/** Sets a deploy's status (and any of its error, version and migration given). */
export async function setDeployStatus(
  db: D1Database,
  id: string,
  status: DeployStatus,
  fields: { error?: string | null; versionId?: string | null; migration?: unknown } = {},
): Promise<void> {
  // A D1 write that fails after the deploy's effects (RELIABILITY row 14).
  fault("deploy.status", { deployId: id, status });
  await db
    .prepare(
      `UPDATE deploys SET status = ?, updated_at = ?,
         error = COALESCE(?, error), version_id = COALESCE(?, version_id), migration = COALESCE(?, migration)
       WHERE id = ?`,
    )
    .bind(
      status,
      Date.now(),
      fields.error ?? null,
      fields.versionId ?? null,
      fields.migration === undefined ? null : JSON.stringify(fields.migration),
      id,
    )
    .run();
}

/** Marks a step as running and counts the attempt (every execution of the step's callback). */
export async function stepStarted(db: D1Database, deployId: string, position: number, name: string): Promise<void> {
  const now = Date.now();
  await db
    .prepare(
      `INSERT INTO deploy_steps (deploy_id, position, name, state, attempts, started_at)
       VALUES (?, ?, ?, 'running', 1, ?)
       ON CONFLICT(deploy_id, name) DO UPDATE SET state = 'running', attempts = deploy_steps.attempts + 1, error = NULL`,
    )
    .bind(deployId, position, name, now)
    .run();
}

export async function stepFinished(
  db: D1Database,
  deployId: string,
  name: string,
  outcome: { ok: true; output: unknown } | { ok: false; error: string },
): Promise<void> {
  await db
    .prepare(
      "UPDATE deploy_steps SET state = ?, finished_at = ?, output = ?, error = ? WHERE deploy_id = ? AND name = ?",
    )
    .bind(
      outcome.ok ? "complete" : "errored",
      Date.now(),
      outcome.ok ? JSON.stringify(outcome.output ?? null) : null,
      outcome.ok ? null : outcome.error,
      deployId,
      name,
    )
    .run();
}

export async function getProject(db: D1Database, id: string): Promise<ProjectRow | null> {
  return db.prepare("SELECT * FROM projects WHERE id = ?").bind(id).first<ProjectRow>();
}

export async function listProjects(db: D1Database, limit = 1000): Promise<ProjectRow[]> {
  const { results } = await db.prepare("SELECT * FROM projects ORDER BY id LIMIT ?").bind(limit).all<ProjectRow>();
  return results;
}

/** What a finished deploy or rollback makes of its project (upsert: the project may be new). */
export interface ProjectVersion {
  projectId: string;
  migrationTag: string | null;
  classes: readonly string[];
  bindings: unknown;
  /** The deploy whose manifest now runs (a rollback's source). */
  currentDeployId: string;
  /** What ran before, unless this deploy is already current (a replayed step). */
  previousDeployId: string | null;
}

/** Makes `version` the project's current one; a replay with the same current deploy changes nothing. */
export function upsertProjectStatement(db: D1Database, version: ProjectVersion, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO projects (id, status, do_migration_tag, do_classes, do_bindings, current_deploy_id, previous_deploy_id, created_at, updated_at)
       VALUES (?1, 'active', ?2, ?3, ?4, ?5, ?6, ?7, ?7)
       ON CONFLICT(id) DO UPDATE SET status = 'active', deleted_at = NULL, do_migration_tag = ?2, do_classes = ?3,
         do_bindings = ?4, current_deploy_id = ?5,
         previous_deploy_id = CASE WHEN projects.current_deploy_id = ?5 THEN projects.previous_deploy_id ELSE ?6 END,
         updated_at = ?7`,
    )
    .bind(
      version.projectId,
      version.migrationTag,
      JSON.stringify(version.classes),
      JSON.stringify(version.bindings),
      version.currentDeployId,
      version.previousDeployId,
      now,
    );
}

/** Records the version and migration a deploy produced. */
export function recordDeployVersionStatement(
  db: D1Database,
  deployId: string,
  versionId: string,
  migration: unknown,
  now: number,
): D1PreparedStatement {
  return db
    .prepare("UPDATE deploys SET version_id = ?, migration = ?, updated_at = ? WHERE id = ?")
    .bind(versionId, JSON.stringify(migration), now, deployId);
}

/** Marks a project deleted (its row stays, for the audit trail and a later deploy under the same id). */
export function softDeleteProjectStatement(db: D1Database, projectId: string, now: number): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE projects SET status = 'deleted', deleted_at = COALESCE(deleted_at, ?1), do_migration_tag = NULL,
         do_classes = '[]', do_bindings = '[]', current_deploy_id = NULL, previous_deploy_id = NULL, updated_at = ?1
       WHERE id = ?2`,
    )
    .bind(now, projectId);
}

/** Forgets a project's enforcement (its removed Durable Object bindings are back, or it is gone). */
export function clearEnforcementStatement(db: D1Database, projectId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM do_enforcement WHERE project_id = ?").bind(projectId);
}

export async function enforcedProjects(db: D1Database, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { results } = await db
    .prepare("SELECT project_id FROM do_enforcement WHERE project_id IN (SELECT value FROM json_each(?))")
    .bind(JSON.stringify(ids))
    .all<{ project_id: string }>();
  return new Set(results.map((row) => row.project_id));
}

function parseStringArray(json: string): string[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/** The contract's project status. */
export function projectStatus(row: ProjectRow, enforced: boolean): ProjectStatus {
  const classes = parseStringArray(row.do_classes);
  return {
    project_id: row.id,
    status: row.status,
    has_durable_objects: classes.length > 0,
    do_classes: classes,
    do_migration_tag: row.do_migration_tag,
    do_enforcement_status: enforced ? "enforced" : "none",
    current_deploy_id: row.current_deploy_id,
    previous_deploy_id: row.previous_deploy_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export function parseClasses(row: ProjectRow | null): string[] {
  return row ? parseStringArray(row.do_classes) : [];
}
