import { z } from "zod";
import { dedupeStore } from "../durable/dedupe-store.do.ts";
import { auditStatement } from "../lib/audit.d1.ts";
import {
  enforcedProjects,
  getDeploy,
  getDeploySteps,
  getProject,
  insertDeployStatement,
  listProjects,
  parseClasses,
  projectStatus,
} from "../lib/deploys.d1.ts";
import { describeError, log } from "../lib/log.ts";
import { sendAll } from "../lib/queue.ts";
import {
  type DeployAccepted,
  DeployManifestSchema,
  type DeployKind,
  DeployParamsSchema,
  ProjectParamsSchema,
  ResourceParamsSchema,
  HOSTED_BINDINGS_TEXT,
  unsupportedBindingKeys,
} from "../schemas/deploy.schema.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import type { Principal } from "./auth.ts";
import { BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized, invalidBody } from "./errors.ts";
import {
  DEPLOY_BODY_LIMIT_BYTES,
  parseJsonBytes,
  parseJsonOrUndefined,
  pathParams,
  readBodyBytes,
  requireJsonContentType,
} from "./http.ts";
import { accepted, ok } from "./responses.ts";
import { type WebhookDelivery, newWebhookSecret, readWebhookDelivery } from "./webhook.ts";
import { authoriseDeploy, deployActor } from "./deploy-auth.ts";
import { claimDeploySecret, getDeploySecret, rotateDeploySecretStatement } from "../lib/deploy-secrets.d1.ts";
import { QUEUES } from "../lib/queues.ts";
import { projectResources } from "../platform/project-resources.ts";
import { resourceHost } from "../platform/tenant-resources.ts";
import { listResources } from "../lib/tenant-resources.d1.ts";
import { deployArtifacts } from "../platform/local/deploy-artifacts.do.ts";

/** How long a webhook delivery id is remembered (senders retry for hours, Standard Webhooks for ~3 days). */
const WEBHOOK_DEDUPE_TTL_MS = 7 * 86_400_000;

const StoredAnswerSchema = z.object({ deploy_id: z.string(), status_url: z.string(), project_id: z.string() });

function statusUrl(deployId: string): string {
  return `/v1/deploys/${deployId}`;
}

/**
 * Records a deploy/rollback/down and enqueues it. The D1 row and the audit entry are written
 * first (idempotent), then the queue send is awaited; a failed send is a 503.
 */
async function enqueueDeploy(
  env: Env,
  deploy: { id: string; projectId: string; kind: DeployKind; webhookId?: string; sourceDeployId?: string | null },
  actor: string,
): Promise<DeployAccepted> {
  await env.DB.batch([
    insertDeployStatement(env.DB, deploy),
    auditStatement(env.DB, {
      id: `${deploy.id}:requested`,
      type:
        deploy.kind === "deploy"
          ? "deploy.requested"
          : deploy.kind === "rollback"
            ? "rollback.requested"
            : "down.requested",
      actor,
      projectId: deploy.projectId,
      details: { deploy_id: deploy.id, webhook_id: deploy.webhookId, source_deploy_id: deploy.sourceDeployId },
    }),
  ]);
  await sendAll(env.DEPLOYS_QUEUE, QUEUES.deploys.name, [
    envelope("deploys.requested", {
      deploy_id: deploy.id,
      project_id: deploy.projectId,
      kind: deploy.kind,
      source_deploy_id: deploy.sourceDeployId ?? null,
    }),
  ]);
  return { deploy_id: deploy.id, status_url: statusUrl(deploy.id), project_id: deploy.projectId };
}

/**
 * `POST /v1/deploys`: a CI system's signed webhook. Verified over the raw bytes before anything is
 * parsed, with the project's own deploy secret (the shared secret only creates projects:
 * producers/deploy-auth.ts); the same `webhook-id` twice starts one deploy (the second answer
 * repeats the first). The answer to a project's first deploy carries its new `deploy_secret`, once.
 */
export async function postDeploy(request: Request, env: Env): Promise<Response> {
  requireJsonContentType(request);
  const raw = await readBodyBytes(request, DEPLOY_BODY_LIMIT_BYTES);
  const delivery = readWebhookDelivery(request.headers);
  // Parsed once, leniently: the project it names picks the secret to verify with; a body that is
  // not JSON is reported (400) only after the signature check.
  const json = parseJsonOrUndefined(raw);
  const authorisation = await authoriseDeploy(request, env, delivery, raw, json);
  const body = json === undefined ? parseJsonBytes(raw) : json;
  const refused = unsupportedBindingKeys(body);
  if (refused.length > 0) {
    throw new BadRequest(
      "unsupported_binding",
      `unsupported binding${refused.length === 1 ? "" : "s"} ${refused.join(", ")}: Shipyard hosts ${HOSTED_BINDINGS_TEXT}; remove ${refused.length === 1 ? "it" : "them"} from the Worker's config (nothing was deployed)`,
      { unsupported_bindings: refused },
    );
  }
  const parsed = DeployManifestSchema.safeParse(body);
  if (!parsed.success) throw invalidBody(parsed.error);
  const manifest = parsed.data;

  const deployId = crypto.randomUUID();
  const answer = { deploy_id: deployId, status_url: statusUrl(deployId), project_id: manifest.project_id };
  const store = dedupeStore(env, `webhook:${delivery.id}`);
  const claimed = await store.putIfAbsent(`webhook:${delivery.id}`, JSON.stringify(answer), WEBHOOK_DEDUPE_TTL_MS);
  if (!claimed.ok) throw new ServiceUnavailable("dedupe_unavailable", claimed.error.message, 5);
  if (!claimed.value.inserted) {
    const first = StoredAnswerSchema.safeParse(JSON.parse(claimed.value.value));
    if (first.success) {
      // The retry of a project's creating delivery repeats its answer whole, secret included.
      const secret = authorisation.signer === "shared" ? authorisation.existing?.secret : undefined;
      return accepted({ ...first.data, ...(secret === undefined ? {} : { deploy_secret: secret }), duplicate: true });
    }
  }
  try {
    const secret =
      authorisation.signer === "shared" ? await createdSecret(request, env, delivery, raw, manifest.project_id) : null;
    await deployArtifacts(env, deployId).put(JSON.stringify(manifest));
    const enqueued = await enqueueDeploy(
      env,
      { id: deployId, projectId: manifest.project_id, kind: "deploy", webhookId: delivery.id },
      deployActor(authorisation),
    );
    return accepted(secret === null ? enqueued : { ...enqueued, deploy_secret: secret });
  } catch (error) {
    // Free the delivery id so the sender's retry can start the deploy.
    await store.forget(`webhook:${delivery.id}`);
    if (error instanceof Unauthorized) throw error;
    log.error("deploy_enqueue_failed", { webhook_id: delivery.id, error: describeError(error) });
    throw new ServiceUnavailable("deploy_unavailable", "could not record the deploy; retry the delivery", 5);
  }
}

/**
 * The secret a project's creating delivery gives it, recorded before the deploy is: when two
 * first deploys race, one delivery's secret stands and the other is refused like any later
 * deploy signed with the shared secret. A retry of the creating delivery finds its own secret.
 */
async function createdSecret(
  request: Request,
  env: Env,
  delivery: WebhookDelivery,
  raw: Uint8Array,
  projectId: string,
): Promise<string> {
  const row = await claimDeploySecret(env.DB, { projectId, secret: newWebhookSecret(), webhookId: delivery.id });
  if (row.created_by_webhook_id === delivery.id) return row.secret;
  // Another delivery created the project first: authorising again now refuses (and audits) this one.
  await authoriseDeploy(request, env, delivery, raw, { project_id: projectId });
  throw new Unauthorized(`project ${projectId} has its own deploy secret`);
}

/** `GET /v1/deploys/:id` (admin): status, steps with attempts, the migration, the error. */
export async function getDeployStatus(request: Request, env: Env): Promise<Response> {
  const { id } = pathParams(request, DeployParamsSchema);
  const deploy = await getDeploy(env.DB, id);
  if (!deploy) throw new NotFound(`no deploy ${id}`);
  const steps = await getDeploySteps(env.DB, id);
  return ok({
    deploy_id: deploy.id,
    project_id: deploy.project_id,
    kind: deploy.kind,
    status: deploy.status,
    steps: steps.map((step) => ({
      ...step,
      output: step.output === null ? null : (JSON.parse(step.output) as unknown),
    })),
    migration: deploy.migration === null ? null : (JSON.parse(deploy.migration) as unknown),
    error: deploy.error,
    version_id: deploy.version_id,
    created_at: deploy.created_at,
    updated_at: deploy.updated_at,
  });
}

/** `GET /v1/projects` (admin). */
export async function getProjects(request: Request, env: Env): Promise<Response> {
  const rows = await listProjects(env.DB);
  const enforced = await enforcedProjects(
    env.DB,
    rows.map((row) => row.id),
  );
  return ok({ projects: rows.map((row) => projectStatus(row, enforced.has(row.id))) });
}

/** `GET /v1/projects/:id` (admin). */
export async function getProjectStatus(request: Request, env: Env): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  const row = await getProject(env.DB, id);
  if (!row) throw new NotFound(`no project ${id}`);
  const enforced = await enforcedProjects(env.DB, [id]);
  return ok({ ...projectStatus(row, enforced.has(id)), resources: await projectResources(env, id) });
}

/** `POST /v1/projects/:id/rollback` (admin): re-deploys the previous version, no Durable Object migration. */
export async function postRollback(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  const row = await getProject(env.DB, id);
  if (!row || row.status !== "active") throw new NotFound(`no active project ${id}`);
  if (!row.previous_deploy_id)
    throw new Conflict("no_previous_deploy", `project ${id} has no previous deploy to roll back to`);
  return accepted(
    await enqueueDeploy(
      env,
      { id: crypto.randomUUID(), projectId: id, kind: "rollback", sourceDeployId: row.previous_deploy_id },
      principal.id,
    ),
  );
}

/**
 * `DELETE /v1/projects/:id` (admin): 409 naming the Durable Object classes whose storage would be
 * destroyed, unless `?confirm=<project id>`; then a workflow deletes the script and soft-deletes.
 */
export async function deleteProject(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  const row = await getProject(env.DB, id);
  if (!row || row.status !== "active") throw new NotFound(`no active project ${id}`);
  const classes = parseClasses(row);
  if (new URL(request.url).searchParams.get("confirm") !== id) {
    // Each resource Shipyard provisioned goes with the project, data and all (D1 can be exported
    // first: POST /v1/projects/:id/resources/:binding/export, `shipyard down --export`).
    const resources = (await listResources(env.DB, id)).map(({ kind, binding, name }) => ({ kind, binding, name }));
    const lost = [
      ...(classes.length > 0 ? [`the storage of its Durable Object classes ${classes.join(", ")}`] : []),
      ...resources.map((resource) => `its ${RESOURCE_LABEL[resource.kind]} ${resource.binding} (${resource.name})`),
    ];
    throw new Conflict(
      "confirmation_required",
      lost.length > 0
        ? `deleting ${id} destroys ${lost.join("; ")}; repeat with ?confirm=${id}`
        : `deleting ${id} removes its Worker; repeat with ?confirm=${id}`,
      { do_classes: classes, resources, confirm: `?confirm=${id}` },
    );
  }
  return accepted(await enqueueDeploy(env, { id: crypto.randomUUID(), projectId: id, kind: "down" }, principal.id));
}

const RESOURCE_LABEL = { d1: "D1 database", kv: "KV namespace", r2: "R2 bucket" } as const;

/**
 * `POST /v1/projects/:id/resources/:binding/export` (admin): the project's D1 database of that
 * binding as SQL (locally a dump of its TenantDatabase, on Cloudflare D1's export API), what
 * `shipyard down --export <file>` writes before it deletes the project. Audited.
 */
export async function postExportResource(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id, binding } = pathParams(request, ResourceParamsSchema);
  const resource = (await listResources(env.DB, id)).find((row) => row.binding === binding);
  if (resource === undefined) throw new NotFound(`project ${id} has no resource bound as ${binding}`);
  if (resource.kind !== "d1") {
    throw new Conflict(
      "not_exportable",
      `${binding} of ${id} is a ${RESOURCE_LABEL[resource.kind]}; only D1 databases export to SQL`,
    );
  }
  const sql = await resourceHost(env).exportD1(resource.resource_id);
  await auditStatement(env.DB, {
    type: "resource.exported",
    actor: principal.id,
    projectId: id,
    details: { binding, kind: resource.kind, name: resource.name, bytes: new TextEncoder().encode(sql).byteLength },
  }).run();
  return ok({ project_id: id, binding, kind: resource.kind, name: resource.name, sql });
}

/**
 * `POST /v1/projects/:id/deploy-secret/rotate` (admin): a new deploy signing secret for the project,
 * answered once; the old one (and the shared secret's grace for the creating delivery) is refused
 * from now on. Audited without the secret. Also gives a secret to a project deployed before
 * per-project secrets existed.
 */
export async function postRotateDeploySecret(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id } = pathParams(request, ProjectParamsSchema);
  if ((await getProject(env.DB, id)) === null && (await getDeploySecret(env.DB, id)) === null) {
    throw new NotFound(`no project ${id}`);
  }
  const secret = newWebhookSecret();
  const now = Date.now();
  await env.DB.batch([
    rotateDeploySecretStatement(env.DB, id, secret, now),
    auditStatement(env.DB, {
      type: "deploy_secret.rotated",
      actor: principal.id,
      projectId: id,
      details: { project: id },
    }),
  ]);
  return ok({ project_id: id, deploy_secret: secret, rotated_at: now });
}
