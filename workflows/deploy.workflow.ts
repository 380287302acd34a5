import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep, type WorkflowStepConfig } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { auditStatement } from "../lib/audit.d1.ts";
import {
  type ProjectRow,
  clearEnforcementStatement,
  getProject,
  parseClasses,
  recordDeployVersionStatement,
  setDeployStatus,
  softDeleteProjectStatement,
  stepFinished,
  stepStarted,
  upsertProjectStatement,
} from "../lib/deploys.d1.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { listResources, recordResource } from "../lib/tenant-resources.d1.ts";
import { type ResourceIds, assemble, loadManifest, planMigration, uploadRequest } from "../platform/deploy-plan.ts";
import { checkStartup, scriptHost } from "../platform/index.ts";
import { resourceName, resourceHost } from "../platform/tenant-resources.ts";
import { uploadRecomputingMigration } from "./deploy-upload.ts";
import type { DeployKind } from "../schemas/deploy.schema.ts";

/** Step names: stable, because a Workflow replays completed steps by name. */
export const STEP_LOAD_PROJECT = "load project";
export const STEP_GENERATE_WRAPPER = "generate metering wrapper";
export const STEP_ASSEMBLE_MODULES = "assemble modules";
export const STEP_COMPUTE_MIGRATION = "compute migration";
export const STEP_PROVISION_RESOURCES = "provision resources";
export const STEP_APPLY_D1_MIGRATIONS = "apply D1 migrations";
export const STEP_CHECK_STARTUP = "check startup";
export const STEP_UPLOAD = "upload";
export const STEP_RECORD = "record deployment";
export const STEP_CLEAR_ENFORCEMENT = "clear enforcement";
export const STEP_DELETE_SCRIPT = "delete script";
export const STEP_SOFT_DELETE = "soft-delete project";
export const STEP_MARK_RUNNING = "mark running";
export const STEP_MARK_COMPLETE = "mark complete";
export const STEP_MARK_FAILED = "mark failed";

export interface DeployParams {
  deployId: string;
  projectId: string;
  kind: DeployKind;
  /** Rollback: the deploy whose manifest to put back. */
  sourceDeployId?: string | null;
}

/** Every step: 5 retries, 2 s doubling, bounded time. */
const STEP_CONFIG = {
  retries: { limit: 5, delay: "2 seconds", backoff: "exponential" },
  timeout: "5 minutes",
} satisfies WorkflowStepConfig;

/** What the workflow knows about the project before it acts. */
interface ProjectSnapshot {
  exists: boolean;
  storedTag: string | null;
  storedClasses: string[];
  currentDeployId: string | null;
}

function snapshot(row: ProjectRow | null): ProjectSnapshot {
  return {
    exists: row !== null && row.status === "active",
    storedTag: row?.do_migration_tag ?? null,
    storedClasses: parseClasses(row),
    currentDeployId: row?.current_deploy_id ?? null,
  };
}

/**
 * Drives one deploy, rollback or down of a tenant project with durable retries. Every step checks
 * before it acts, so a step retried after its side effect (or the whole instance replayed) does no
 * harm; input that can never succeed fails at once with `NonRetryableError`. Step states and
 * attempts are mirrored into D1 `deploy_steps` for `GET /v1/deploys/:id`.
 */
export class DeployWorkflow extends WorkflowEntrypoint<Env, DeployParams> {
  override async run(event: WorkflowEvent<DeployParams>, step: WorkflowStep): Promise<{ versionId: string | null }> {
    const params = event.payload;
    try {
      // Status writes are side effects like any other: inside steps, so a failed write is retried
      // and a replay does not repeat it (a deploy that went live must never end `errored`).
      await step.do(STEP_MARK_RUNNING, STEP_CONFIG, async () => {
        await setDeployStatus(this.env.DB, params.deployId, "running");
        return true;
      });
      const result = params.kind === "down" ? await this.#down(params, step) : await this.#deploy(params, step);
      await step.do(STEP_MARK_COMPLETE, STEP_CONFIG, async () => {
        await setDeployStatus(this.env.DB, params.deployId, "complete", { versionId: result.versionId });
        return true;
      });
      return result;
    } catch (error) {
      const message = describeError(error);
      await step.do(STEP_MARK_FAILED, STEP_CONFIG, async () => {
        await setDeployStatus(this.env.DB, params.deployId, "errored", { error: message });
        await auditStatement(this.env.DB, {
          id: `${params.deployId}:failed`,
          type: "deploy.failed",
          actor: "system",
          projectId: params.projectId,
          details: { deploy_id: params.deployId, kind: params.kind, error: message },
        }).run();
        return message;
      });
      log.error("deploy_failed", {
        deploy_id: params.deployId,
        project_id: params.projectId,
        kind: params.kind,
        error: message,
      });
      throw error;
    }
  }

  async #deploy(params: DeployParams, step: WorkflowStep): Promise<{ versionId: string | null }> {
    const track = this.#tracker(params.deployId, step);
    const manifestDeployId = params.kind === "rollback" ? (params.sourceDeployId ?? "") : params.deployId;

    const project = await track(1, STEP_LOAD_PROJECT, async () =>
      snapshot(await getProject(this.env.DB, params.projectId)),
    );
    await track(2, STEP_GENERATE_WRAPPER, async () => {
      const manifest = await loadManifest(this.env, manifestDeployId);
      const plan = assemble(manifest);
      return { module: plan.mainModule, bytes: plan.wrapperBytes, classes: plan.classes };
    });
    await track(3, STEP_ASSEMBLE_MODULES, async () => {
      const plan = assemble(await loadManifest(this.env, manifestDeployId));
      return { main_module: plan.mainModule, modules: plan.modules.map((m) => m.name), dropped: plan.dropped };
    });
    // A rollback is forward-only: it never migrates Durable Objects, it reuses the live classes.
    const migration = await track(4, STEP_COMPUTE_MIGRATION, async () =>
      params.kind === "rollback"
        ? { kind: "none" as const, tag: project.storedTag, classes: project.storedClasses }
        : planMigration(await loadManifest(this.env, manifestDeployId), project.storedTag, project.storedClasses),
    );
    // Resources before anything that binds them: one per (project, binding), created on the first
    // deploy that declares it and reused by every later deploy and rollback.
    const resources = await track(5, STEP_PROVISION_RESOURCES, async () =>
      this.#provision(params.projectId, await loadManifest(this.env, manifestDeployId)),
    );
    // Forward-only, before the upload: a failing migration ends the deploy with SQLite's message
    // and the previous version keeps serving (a rollback never migrates).
    await track(6, STEP_APPLY_D1_MIGRATIONS, async () =>
      params.kind === "rollback"
        ? { applied: {} }
        : this.#migrateD1(await loadManifest(this.env, manifestDeployId), resources),
    );
    // The version must start before it may replace the one serving (Cloudflare's upload
    // validation does this in production): a top-level throw, bad wasm or a missing module ends
    // the deploy here with the runtime's message, and the previous version keeps serving.
    await track(7, STEP_CHECK_STARTUP, async () => {
      const manifest = await loadManifest(this.env, manifestDeployId);
      const request = uploadRequest(
        params.projectId,
        assemble(manifest),
        manifest,
        migration,
        params.kind === "rollback",
        resources,
      );
      const checked = await checkStartup(this.env, request, migration.classes);
      if (!checked.ok) throw new NonRetryableError(`the Worker does not start: ${checked.error.message}`);
      return { checked_by: checked.value.checkedBy, ms: checked.value.ms };
    });
    const uploaded = await track(8, STEP_UPLOAD, async () => {
      const manifest = await loadManifest(this.env, manifestDeployId);
      return uploadRecomputingMigration(scriptHost(this.env), {
        deployId: params.deployId,
        projectId: params.projectId,
        rollback: params.kind === "rollback",
        plan: assemble(manifest),
        manifest,
        migration,
        resources,
      });
    });
    await track(9, STEP_RECORD, async () => {
      const manifest = await loadManifest(this.env, manifestDeployId);
      const now = Date.now();
      const previous = project.currentDeployId === params.deployId ? null : project.currentDeployId;
      await this.env.DB.batch([
        upsertProjectStatement(
          this.env.DB,
          {
            projectId: params.projectId,
            migrationTag: uploaded.migrationTag,
            classes: uploaded.classes,
            bindings: manifest.config.durable_objects?.bindings ?? [],
            currentDeployId: params.kind === "rollback" ? manifestDeployId : params.deployId,
            previousDeployId: previous,
          },
          now,
        ),
        recordDeployVersionStatement(this.env.DB, params.deployId, uploaded.versionId, migration, now),
        auditStatement(
          this.env.DB,
          {
            id: `${params.deployId}:completed`,
            type: params.kind === "rollback" ? "rollback.completed" : "deploy.completed",
            actor: "system",
            projectId: params.projectId,
            details: {
              deploy_id: params.deployId,
              version_id: uploaded.versionId,
              migration_tag: uploaded.migrationTag,
            },
          },
          now,
        ),
      ]);
      return { version_id: uploaded.versionId, migration_tag: uploaded.migrationTag };
    });
    await track(10, STEP_CLEAR_ENFORCEMENT, async () => {
      // The upload carried the manifest's full bindings, so a redeploy or rollback has already put
      // back any removed Durable Object binding; what is left is to forget the enforcement.
      const cleared = await this.env.DB.batch([clearEnforcementStatement(this.env.DB, params.projectId)]);
      const changes = cleared[0]?.meta.changes ?? 0;
      if (changes > 0) {
        await auditStatement(this.env.DB, {
          id: `${params.deployId}:enforcement-cleared`,
          type: "enforcement.cleared",
          actor: "system",
          projectId: params.projectId,
          details: { reason: params.kind, deploy_id: params.deployId },
        }).run();
      }
      return { cleared: changes > 0 };
    });
    return { versionId: uploaded.versionId };
  }

  /**
   * The resource id of each D1 binding of the manifest: the recorded one, or a database created
   * now (the host looks up by name first, and the first recorded row wins, so a retried step never
   * makes a second database).
   */
  async #provision(projectId: string, manifest: Awaited<ReturnType<typeof loadManifest>>): Promise<ResourceIds> {
    const declared = [
      ...(manifest.config.d1_databases ?? []).map(({ binding }) => ({ binding, kind: "d1" as const })),
      ...(manifest.config.kv_namespaces ?? []).map(({ binding }) => ({ binding, kind: "kv" as const })),
    ];
    if (declared.length === 0) return {};
    const known = new Map((await listResources(this.env.DB, projectId)).map((row) => [row.binding, row]));
    for (const { binding, kind } of declared) {
      if (known.get(binding)?.kind === kind) continue;
      const name = resourceName(projectId, binding);
      const host = resourceHost(this.env);
      const { id } = kind === "d1" ? await host.ensureD1(name) : await host.ensureKV(name);
      await recordResource(this.env.DB, {
        project_id: projectId,
        binding,
        kind,
        name,
        resource_id: id,
        created_at: Date.now(),
      });
      log.info("tenant_resource_provisioned", { project_id: projectId, binding, kind, name, id });
    }
    const kinds = new Map(declared.map((entry) => [entry.binding, entry.kind]));
    const rows = await listResources(this.env.DB, projectId);
    return Object.fromEntries(
      rows.filter((row) => kinds.get(row.binding) === row.kind).map((row) => [row.binding, row.resource_id]),
    );
  }

  /** Applies each D1 binding's pending migrations; the first failure fails the deploy for good. */
  async #migrateD1(
    manifest: Awaited<ReturnType<typeof loadManifest>>,
    resources: ResourceIds,
  ): Promise<{ applied: Record<string, string[]> }> {
    const applied: Record<string, string[]> = {};
    for (const database of manifest.config.d1_databases ?? []) {
      const migrations = database.migrations ?? [];
      const id = resources[database.binding];
      if (migrations.length === 0 || id === undefined) continue;
      const result = await resourceHost(this.env).applyD1Migrations(id, migrations);
      if (!result.ok) {
        throw new NonRetryableError(
          `D1 migration ${result.error.name} of binding ${database.binding} failed: ${result.error.message}`,
        );
      }
      applied[database.binding] = result.value.applied;
    }
    return { applied };
  }

  async #down(params: DeployParams, step: WorkflowStep): Promise<{ versionId: null }> {
    const track = this.#tracker(params.deployId, step);
    await track(1, STEP_DELETE_SCRIPT, async () => {
      await scriptHost(this.env).deleteScript(params.projectId);
      return { deleted: params.projectId };
    });
    await track(2, STEP_SOFT_DELETE, async () => {
      const now = Date.now();
      await this.env.DB.batch([
        clearEnforcementStatement(this.env.DB, params.projectId),
        softDeleteProjectStatement(this.env.DB, params.projectId, now),
        auditStatement(
          this.env.DB,
          {
            id: `${params.deployId}:completed`,
            type: "down.completed",
            actor: "system",
            projectId: params.projectId,
            details: { deploy_id: params.deployId },
          },
          now,
        ),
      ]);
      return { soft_deleted: true };
    });
    return { versionId: null };
  }

  /** `step.do` with the step's state and attempts mirrored into D1. */
  #tracker(deployId: string, step: WorkflowStep) {
    return <T extends Rpc.Serializable<T>>(position: number, name: string, fn: () => Promise<T>): Promise<T> =>
      step.do(name, STEP_CONFIG, async () => {
        await stepStarted(this.env.DB, deployId, position, name);
        try {
          const output = await fn();
          // A crash after the step's side effect and before the engine recorded its result.
          fault("workflow.step.after_effect", { deployId, step: name });
          await stepFinished(this.env.DB, deployId, name, { ok: true, output });
          return output;
        } catch (error) {
          await stepFinished(this.env.DB, deployId, name, { ok: false, error: describeError(error) });
          throw error;
        }
      });
  }
}
