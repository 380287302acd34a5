import { NonRetryableError } from "cloudflare:workflows";
import { type DeployManifest, DeployManifestSchema, ProjectIdSchema } from "../schemas/deploy.schema.ts";
import { WRAPPER_MODULE, generateMeterWrapper } from "./meter-wrapper.ts";
import { type MigrationPlan, computeMigration } from "./do-migrations.ts";
import { assembleModules, normaliseModuleName } from "./modules.ts";
import type { ScriptBinding, ScriptModule, UploadAssets, UploadRequest } from "./script-host.ts";
import { deployArtifacts } from "./local/deploy-artifacts.do.ts";

/**
 * The deterministic part of a deploy: from a manifest to what gets uploaded. The workflow's steps
 * recompute these from the stored manifest instead of passing modules between steps (step outputs
 * are capped at 1 MiB; a manifest may be 25 MiB), which is safe because every function here is pure.
 */

/**
 * The script a project's Worker is uploaded as, in the dispatch namespace and locally: the project
 * id itself (a lowercase slug, ProjectIdSchema).
 */
export function scriptNameOf(projectId: string): string {
  return projectId;
}

/** The project whose Worker `scriptName` is (the inverse of `scriptNameOf`), or null for no project's. */
export function projectOfScript(scriptName: string): string | null {
  return ProjectIdSchema.safeParse(scriptName).success ? scriptName : null;
}

export interface DeployPlan {
  mainModule: string;
  modules: ScriptModule[];
  dropped: string[];
  wrapperBytes: number;
  /** Durable Object classes the manifest binds (the ones the entry module names). */
  classes: string[];
}

/** Reads and validates the manifest stored for `deployId`; a missing or invalid one can never succeed. */
export async function loadManifest(env: Env, deployId: string): Promise<DeployManifest> {
  const json = await deployArtifacts(env, deployId).get();
  if (json === null) throw new NonRetryableError(`no manifest stored for deploy ${deployId}`);
  const parsed = DeployManifestSchema.safeParse(JSON.parse(json));
  if (!parsed.success) throw new NonRetryableError(`stored manifest of ${deployId} is invalid`);
  return parsed.data;
}

/** Durable Object classes the manifest binds, in first-seen order. */
export function boundClasses(manifest: DeployManifest): string[] {
  return [...new Set((manifest.config.durable_objects?.bindings ?? []).map((binding) => binding.class_name))];
}

/** Generates the entry module and assembles the module list (entry module first, as main module). */
export function assemble(manifest: DeployManifest): DeployPlan {
  const classes = boundClasses(manifest);
  let wrapperSource: string;
  try {
    wrapperSource = generateMeterWrapper({
      // The name the modules are uploaded under (`./src/index.js` is `src/index.js`).
      tenantMainModule: normaliseModuleName(manifest.main_module) ?? manifest.main_module,
      durableObjectClasses: classes,
    });
  } catch (error) {
    throw new NonRetryableError(`cannot generate the entry module: ${String(error)}`);
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

/**
 * The bindings a version is uploaded with: its Durable Objects, its vars (strings as text, other
 * JSON as json, as wrangler sends them), its secrets and its assets binding: only what the
 * manifest declared. No platform binding: usage is measured outside the tenant (the host object
 * locally, trace items in production: platform/tail-usage.ts), so nothing here writes it.
 */
export function manifestBindings(manifest: DeployManifest, resources: ResourceIds = {}): ScriptBinding[] {
  const assetsBinding = manifest.config.assets?.binding;
  return [
    ...(manifest.config.d1_databases ?? []).map((database): ScriptBinding => {
      const id = resources[database.binding];
      // The provisioning step ran before any upload is built: a missing id is a bug, never a silent drop.
      if (id === undefined) throw new Error(`D1 binding ${database.binding} has no provisioned database`);
      return { type: "d1", name: database.binding, id };
    }),
    ...(manifest.config.kv_namespaces ?? []).map((namespace): ScriptBinding => {
      const id = resources[namespace.binding];
      if (id === undefined) throw new Error(`KV binding ${namespace.binding} has no provisioned namespace`);
      return { type: "kv_namespace", name: namespace.binding, namespace_id: id };
    }),
    ...(manifest.config.durable_objects?.bindings ?? []).map((binding): ScriptBinding => ({
      type: "durable_object_namespace",
      name: binding.name,
      class_name: binding.class_name,
    })),
    ...Object.entries(manifest.config.vars ?? {}).map(([name, value]): ScriptBinding =>
      typeof value === "string" ? { type: "plain_text", name, text: value } : { type: "json", name, json: value },
    ),
    ...Object.entries(manifest.config.secrets ?? {}).map(([name, text]): ScriptBinding => ({
      type: "secret_text",
      name,
      text,
    })),
    ...(assetsBinding === undefined ? [] : [{ type: "assets", name: assetsBinding } satisfies ScriptBinding]),
  ];
}

/** The upload's static assets, or undefined when the manifest has none. */
export function manifestAssets(manifest: DeployManifest): UploadAssets | undefined {
  const config = manifest.config.assets;
  if (config === undefined) return undefined;
  return {
    files: manifest.assets ?? [],
    config: {
      ...(config.html_handling === undefined ? {} : { html_handling: config.html_handling }),
      ...(config.not_found_handling === undefined ? {} : { not_found_handling: config.not_found_handling }),
      ...(config.run_worker_first === undefined ? {} : { run_worker_first: config.run_worker_first }),
      // Cloudflare's API names for the files' text.
      // oxlint-disable-next-line eslint/no-underscore-dangle
      ...(config._redirects === undefined ? {} : { _redirects: config._redirects }),
      // oxlint-disable-next-line eslint/no-underscore-dangle
      ...(config._headers === undefined ? {} : { _headers: config._headers }),
    },
  };
}

/** The provisioned resource id of each resource binding (D1, KV), by binding name. */
export type ResourceIds = Record<string, string>;

export function uploadRequest(
  projectId: string,
  plan: DeployPlan,
  manifest: DeployManifest,
  migration: MigrationPlan,
  rollback: boolean,
  resources: ResourceIds = {},
): UploadRequest {
  const assets = manifestAssets(manifest);
  return {
    scriptName: scriptNameOf(projectId),
    mainModule: WRAPPER_MODULE,
    modules: plan.modules,
    bindings: manifestBindings(manifest, resources),
    compatibilityDate: manifest.compatibility_date,
    compatibilityFlags: manifest.compatibility_flags ?? [],
    ...(migration.kind === "migrate" && !rollback ? { migrations: migration.migrations } : {}),
    ...(assets === undefined ? {} : { assets }),
  };
}
