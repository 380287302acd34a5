import { NonRetryableError } from "cloudflare:workflows";
import { type DeployManifest, DeployManifestSchema } from "../schemas/deploy.schema.ts";
import { WRAPPER_MODULE, generateMeterWrapper } from "./meter-wrapper.ts";
import { type MigrationPlan, computeMigration } from "./do-migrations.ts";
import { assembleModules } from "./modules.ts";
import type { ScriptBinding, ScriptModule, UploadRequest } from "./script-host.ts";

/**
 * The deterministic part of a deploy: from a manifest to what gets uploaded. The workflow's steps
 * recompute these from the stored manifest instead of passing modules between steps (step outputs
 * are capped at 1 MiB; a manifest may be 25 MiB), which is safe because every function here is pure.
 */

/** Name of the Analytics Engine binding tenants' metering writes to, and its dataset. */
export const USAGE_BINDING = "USAGE";
export const USAGE_DATASET = "shipyard_do_usage";

export interface DeployPlan {
  mainModule: string;
  modules: ScriptModule[];
  dropped: string[];
  wrapperBytes: number;
  /** Durable Object classes the manifest binds (the ones the wrapper meters). */
  classes: string[];
}

/** Reads and validates the manifest stored for `deployId`; a missing or invalid one can never succeed. */
export async function loadManifest(env: Env, deployId: string): Promise<DeployManifest> {
  const json = await env.DEPLOY_ARTIFACTS.getByName(deployId).get();
  if (json === null) throw new NonRetryableError(`no manifest stored for deploy ${deployId}`);
  const parsed = DeployManifestSchema.safeParse(JSON.parse(json));
  if (!parsed.success) throw new NonRetryableError(`stored manifest of ${deployId} is invalid`);
  return parsed.data;
}

/** Durable Object classes the manifest binds, in first-seen order. */
export function boundClasses(manifest: DeployManifest): string[] {
  return [...new Set((manifest.config.durable_objects?.bindings ?? []).map((binding) => binding.class_name))];
}

/** Generates the metering wrapper and assembles the module list (wrapper first, as main module). */
export function assemble(projectId: string, manifest: DeployManifest): DeployPlan {
  const classes = boundClasses(manifest);
  let wrapperSource: string;
  try {
    wrapperSource = generateMeterWrapper({
      projectId,
      tenantMainModule: manifest.main_module,
      durableObjectClasses: classes,
    });
  } catch (error) {
    throw new NonRetryableError(`cannot generate the metering wrapper: ${String(error)}`);
  }
  const assembled = assembleModules({
    wrapperSource,
    tenantModules: manifest.modules,
    tenantMainModule: manifest.main_module,
  });
  if (!assembled.ok) throw new NonRetryableError(assembled.error.message);
  return {
    mainModule: assembled.value.mainModule,
    modules: assembled.value.modules,
    dropped: assembled.value.dropped,
    wrapperBytes: new TextEncoder().encode(wrapperSource).byteLength,
    classes,
  };
}

/** The migration from the stored (or live) tag; refusals such as data loss never succeed on retry. */
export function planMigration(
  manifest: DeployManifest,
  storedTag: string | null,
  storedClasses: string[],
): MigrationPlan {
  const plan = computeMigration({
    storedTag,
    storedClasses,
    manifestClasses: boundClasses(manifest),
    declared: manifest.config.migrations,
  });
  if (!plan.ok) throw new NonRetryableError(`${plan.error.reason}: ${plan.error.message}`);
  return plan.value;
}

/** The bindings a version is uploaded with: its Durable Objects, its vars, and metering. */
export function manifestBindings(manifest: DeployManifest): ScriptBinding[] {
  return [
    ...(manifest.config.durable_objects?.bindings ?? []).map((binding): ScriptBinding => ({
      type: "durable_object_namespace",
      name: binding.name,
      class_name: binding.class_name,
    })),
    ...Object.entries(manifest.config.vars ?? {}).map(([name, text]): ScriptBinding => ({
      type: "plain_text",
      name,
      text,
    })),
    { type: "analytics_engine", name: USAGE_BINDING, dataset: USAGE_DATASET },
  ];
}

export function uploadRequest(
  projectId: string,
  plan: DeployPlan,
  manifest: DeployManifest,
  migration: MigrationPlan,
  rollback: boolean,
): UploadRequest {
  return {
    scriptName: projectId,
    mainModule: WRAPPER_MODULE,
    modules: plan.modules,
    bindings: manifestBindings(manifest),
    compatibilityDate: manifest.compatibility_date,
    compatibilityFlags: manifest.compatibility_flags ?? [],
    ...(migration.kind === "migrate" && !rollback ? { migrations: migration.migrations } : {}),
  };
}
