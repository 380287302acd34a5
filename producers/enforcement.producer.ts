import { z } from "zod";
import { audit } from "../lib/audit.d1.ts";
import { config } from "../lib/config.ts";
import { clearEnforcementStatement, getProject } from "../lib/deploys.d1.ts";
import { log } from "../lib/log.ts";
import { scriptHost } from "../platform/index.ts";
import type { ScriptBinding } from "../platform/script-host.ts";
import { usageSource } from "../platform/usage-source.ts";
import { ProjectParamsSchema } from "../schemas/deploy.schema.ts";
import { EnforcementRunParamsSchema, EnforcementRunRequestSchema } from "../schemas/enforcement.schema.ts";
import { WINDOW_MS, startEnforcement } from "../workflows/enforcement.workflow.ts";
import type { Principal } from "./auth.ts";
import { Conflict, NotFound } from "./errors.ts";
import { pathParams, readJson } from "./http.ts";
import { accepted, ok } from "./responses.ts";

const BindingSchema = z.object({
  type: z.literal("durable_object_namespace"),
  name: z.string(),
  class_name: z.string(),
});

interface EnforcementRow {
  project_id: string;
  removed_bindings: string;
  wall_ms: number;
  threshold_ms: number;
  enforced_at: number;
}

async function enforcementRow(db: D1Database, projectId: string): Promise<EnforcementRow | null> {
  return db.prepare("SELECT * FROM do_enforcement WHERE project_id = ?").bind(projectId).first<EnforcementRow>();
}

function removedBindings(row: EnforcementRow | null): z.infer<typeof BindingSchema>[] {
  if (!row) return [];
  const parsed = z.array(BindingSchema).safeParse(JSON.parse(row.removed_bindings));
  return parsed.success ? parsed.data : [];
}

/** `POST /v1/admin/enforcement/run` (admin): starts an enforcement cycle now. */
export async function postEnforcementRun(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const hasBody = request.headers.get("content-length") !== "0" && request.body !== null;
  const body = hasBody ? (await readJson(request, EnforcementRunRequestSchema)).body : {};
  const now = Date.now();
  const run = await startEnforcement(env, now, {
    trigger: "manual",
    id: `enforcement-manual-${crypto.randomUUID()}`,
    ...(body.threshold_ms === undefined ? {} : { thresholdMs: body.threshold_ms }),
  });
  await audit(env.DB, {
    type: "admin.action",
    actor: principal.id,
    details: { action: "enforcement.run", run_id: run.id, threshold_ms: body.threshold_ms ?? null },
  });
  return accepted({ run_id: run.id, status_url: `/v1/admin/enforcement/runs/${run.id}` });
}

/** `GET /v1/admin/enforcement/runs/:id` (admin): the workflow's status and outcome. */
export async function getEnforcementRun(request: Request, env: Env): Promise<Response> {
  const { id } = pathParams(request, EnforcementRunParamsSchema);
  let status: InstanceStatus;
  try {
    status = await (await env.ENFORCEMENT_WORKFLOW.get(id)).status();
  } catch {
    throw new NotFound(`no enforcement run ${id}`);
  }
  return ok({ run_id: id, status: status.status, output: status.output ?? null, error: status.error?.message ?? null });
}

/** `POST /v1/projects/:id/enforcement/restore` (admin): puts the removed bindings back. */
export async function postEnforcementRestore(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  const row = await enforcementRow(env.DB, id);
  if (!row) throw new Conflict("not_enforced", `project ${id} has no removed bindings to restore`);
  const host = scriptHost(env);
  const script = await host.getScript(id);
  if (!script) throw new NotFound(`project ${id} has no deployed Worker`);
  const present = new Set(script.bindings.map((binding) => binding.name));
  const restoring: ScriptBinding[] = removedBindings(row).filter((binding) => !present.has(binding.name));
  // Put back first, forget after: a failure in between leaves the row, and a retry restores nothing twice.
  if (restoring.length > 0) await host.setBindings(id, [...script.bindings, ...restoring]);
  await clearEnforcementStatement(env.DB, id).run();
  await audit(env.DB, {
    type: "enforcement.cleared",
    actor: principal.id,
    projectId: id,
    details: { reason: "restore", bindings: restoring.map((binding) => binding.name) },
  });
  log.info("enforcement_restored", { project_id: id, bindings: restoring.length });
  return ok({ project_id: id, restored: restoring.map((binding) => binding.name), do_enforcement_status: "none" });
}

/** `GET /v1/projects/:id/do-usage` (admin): rolling 24 h wall time, threshold, status, removed bindings. */
export async function getDoUsage(request: Request, env: Env): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  if (!(await getProject(env.DB, id))) throw new NotFound(`no project ${id}`);
  const now = Date.now();
  // Current, not the last enforcement cycle's rollup: invocations stored so far are counted.
  const [usage, row] = await Promise.all([
    usageSource(env).currentUsageOf(id, WINDOW_MS, now),
    enforcementRow(env.DB, id),
  ]);
  return ok({
    project_id: id,
    window_hours: WINDOW_MS / 3_600_000,
    wall_ms: Math.round(usage.wallMs),
    invocations: usage.invocations,
    as_of: usage.asOf,
    source: usage.source,
    lag_ms: usage.lagMs,
    threshold_ms: config(env).ENFORCEMENT_THRESHOLD_MS,
    do_enforcement_status: row ? "enforced" : "none",
    removed_bindings: removedBindings(row).map((binding) => ({ name: binding.name, class_name: binding.class_name })),
    enforced_at: row?.enforced_at ?? null,
  });
}
