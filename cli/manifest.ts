/**
 * `shipyard deploy <dir>`: turns a Worker project, as it is, into the deploy manifest the webhook
 * takes (../shared/CONTRACT.md "Deploy webhook"), and signs it like a CI sender would (Standard
 * Webhooks). The config is read and the Worker bundled by wrangler itself (cli/wrangler.ts), so a
 * project deploys here as `wrangler deploy` would deploy it; what Shipyard cannot host is refused
 * up front, naming the config file and key (why: docs/decisions/0010-12-deploy-input.md).
 */
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import {
  type D1BindingConfig,
  type DeployManifest,
  DeployManifestSchema,
  type DeployModule,
  HOSTED_BINDINGS_TEXT,
  UNSUPPORTED_BINDING_KEYS,
} from "../schemas/deploy.schema.ts";
import { packAssets } from "./assets.ts";
import { type WranglerConfig, WranglerError, bundleWithWrangler, readWranglerConfig } from "./wrangler.ts";

/** The local webhook secret (.dev.vars.example); production senders set SHIPYARD_WEBHOOK_SECRET. */
export const DEFAULT_WEBHOOK_SECRET = "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1zaGlweWFyZA==";

/** The webhook's body limit for deploys (CONTRACT.md: 25 MiB). */
export const DEPLOY_LIMIT_BYTES = 25 * 1024 * 1024;

/** A tenant directory or config that cannot become a manifest (exit 1, with what to fix). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** Module types by the content type wrangler gives each upload part. */
const MODULE_TYPES: ReadonlyMap<string, DeployModule["type"]> = new Map([
  ["application/javascript+module", "esm"],
  ["application/javascript", "cjs"],
  ["text/plain", "text"],
  ["application/octet-stream", "data"],
  ["application/wasm", "wasm"],
  ["application/source-map", "sourcemap"],
]);

/** Upload binding types Shipyard hosts (wrangler's API names). */
const SUPPORTED_BINDING_TYPES = new Set([
  "plain_text",
  "json",
  "secret_text",
  "durable_object_namespace",
  "assets",
  // Provisioned by Shipyard (the config's ids are not used): read from `d1_databases` / `kv_namespaces` / `r2_buckets`.
  "d1",
  "kv_namespace",
  "r2_bucket",
]);

/** Config keys whose entries are not bindings but would be silently not run. */
const REFUSED_OTHER_KEYS = ["wasm_modules", "text_blobs", "data_blobs", "containers"] as const;

/** Overrides for `readManifest`. */
export interface ReadOptions {
  /** Overrides the project id (default: the config's `name`). */
  projectId?: string;
  /** Config file, relative to `dir` (default: found as wrangler finds it). */
  config?: string;
  /** A wrangler environment (`env.<name>` in the config), as `wrangler deploy --env <name>`. */
  env?: string;
  /** A secrets file in wrangler's `--secrets-file` formats (.dev.vars / .env, or JSON), relative to the cwd. */
  secretsFile?: string;
  /** Progress lines for people (config read, wrangler's bundling output, assets packed). */
  onProgress?: (line: string) => void;
}

/**
 * The likeliest cause of "Could not resolve" when the project declares npm dependencies and no
 * `node_modules` is where Node would look (the directory or any parent, as in a workspace): they
 * were never installed. Empty otherwise.
 */
async function uninstalledHint(dir: string, bundleOutput: string): Promise<string> {
  if (!bundleOutput.includes("Could not resolve")) return "";
  const text = await readFile(path.join(dir, "package.json"), "utf8").catch(() => null);
  if (text === null) return "";
  const manifest = z
    .looseObject({ dependencies: z.record(z.string(), z.string()).optional() })
    .safeParse(parseJsonOrNull(text));
  if (!manifest.success || Object.keys(manifest.data.dependencies ?? {}).length === 0) return "";
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    if (existsSync(path.join(at, "node_modules"))) return "";
    if (path.dirname(at) === at) break;
  }
  return `\nhint: ${path.resolve(dir)} declares npm dependencies and has no node_modules: install them first (npm ci or npm install), as its own CI does before wrangler deploy`;
}

function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Whether a config key holds anything (wrangler normalises absent keys to [] or {}). */
function present(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.values(value).some(present);
  return true;
}

/** Refuses what Shipyard cannot host, before anything is bundled; returns warnings for ignored keys. */
function checkConfig(config: WranglerConfig, file: string): string[] {
  const record: Record<string, unknown> = { ...config };
  const refused = [...UNSUPPORTED_BINDING_KEYS, ...REFUSED_OTHER_KEYS].filter((key) => present(record[key]));
  if (refused.length > 0) {
    throw new ManifestError(
      `${file}: unsupported binding${refused.length === 1 ? "" : "s"} ${refused.map((key) => `\`${key}\``).join(", ")}. ` +
        `Shipyard hosts ${HOSTED_BINDINGS_TEXT}; remove ${refused.length === 1 ? "the key" : "the keys"}.`,
    );
  }
  const external = config.durable_objects.bindings.find(
    (binding) => binding.script_name !== undefined && binding.script_name !== config.name,
  );
  if (external) {
    throw new ManifestError(
      `${file}: durable_objects.bindings ${external.name} has script_name ${external.script_name} (a class of another Worker); Shipyard binds only the Worker's own classes`,
    );
  }
  const warnings: string[] = [];
  if (present(config.triggers.crons)) warnings.push(`${file}: triggers.crons are not run by Shipyard (ignored)`);
  if (present(config.routes) || present(config.route))
    warnings.push(`${file}: routes are ignored (tenants are served under /t/<project>/)`);
  return warnings;
}

function migrationsOf(config: WranglerConfig): NonNullable<DeployManifest["config"]["migrations"]> {
  return config.migrations.map((migration) => ({
    tag: migration.tag,
    ...(migration.new_sqlite_classes ? { new_sqlite_classes: migration.new_sqlite_classes } : {}),
    ...(migration.new_classes ? { new_classes: migration.new_classes } : {}),
    ...(migration.renamed_classes ? { renamed_classes: migration.renamed_classes } : {}),
    ...(migration.deleted_classes ? { deleted_classes: migration.deleted_classes } : {}),
  }));
}

/**
 * The D1 bindings of the config with their migrations: the `.sql` files of each binding's
 * `migrations_dir` (default `migrations`, as wrangler), in file-name order as wrangler applies
 * them. A missing default folder means no migrations; a missing named one is an error.
 */
async function d1DatabasesOf(config: WranglerConfig, configPath: string): Promise<D1BindingConfig[]> {
  const out: D1BindingConfig[] = [];
  for (const database of config.d1_databases) {
    const directory = path.resolve(path.dirname(configPath), database.migrations_dir ?? "migrations");
    let names: string[];
    try {
      names = (await readdir(directory)).filter((name) => name.endsWith(".sql")).toSorted();
    } catch (error) {
      if (database.migrations_dir === undefined) names = [];
      else {
        throw new ManifestError(
          `${configPath}: d1_databases ${database.binding}: migrations_dir ${directory}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    const migrations = await Promise.all(
      names.map(async (name) => ({ name, sql: await readFile(path.join(directory, name), "utf8") })),
    );
    out.push({ binding: database.binding, ...(migrations.length > 0 ? { migrations } : {}) });
  }
  return out;
}

/**
 * The manifest for the Worker project in `dir`: wrangler reads its config and bundles it
 * (TypeScript, npm dependencies, rules, alias, define, nodejs_compat, source maps); the upload
 * wrangler would send becomes modules and bindings; the assets directory is packed. Validated
 * against the webhook's own schema. Throws `ManifestError` naming the file and key to fix.
 */
export async function readManifest(dir: string, options: ReadOptions = {}): Promise<DeployManifest> {
  const progress = options.onProgress ?? (() => undefined);
  let config: WranglerConfig;
  try {
    config = await readWranglerConfig(dir, options.config, options.env);
  } catch (error) {
    throw new ManifestError(error instanceof Error ? error.message : String(error));
  }
  const configPath = config.configPath ?? path.resolve(dir);
  const redirected = config.userConfigPath !== undefined && config.userConfigPath !== config.configPath;
  progress(
    `config ${path.relative(process.cwd(), configPath) || configPath}${redirected ? " (redirected by a build tool)" : ""}`,
  );
  for (const warning of checkConfig(config, configPath)) progress(`warning: ${warning}`);
  if (!config.compatibility_date) {
    throw new ManifestError(`${configPath}: \`compatibility_date\` is required (a "YYYY-MM-DD" string)`);
  }
  const projectId = options.projectId ?? config.name;
  if (!projectId) throw new ManifestError(`${configPath} has no \`name\`; add one or pass --project <id>`);

  let bundle;
  try {
    bundle = await bundleWithWrangler(dir, {
      configPath,
      redirected,
      ...(options.secretsFile === undefined ? {} : { secretsFile: path.resolve(options.secretsFile) }),
      ...(options.env === undefined ? {} : { env: options.env }),
      onLine: (line) => progress(`  wrangler │ ${line}`),
    });
  } catch (error) {
    if (error instanceof WranglerError) {
      throw new ManifestError(`${configPath}: ${error.message}${await uninstalledHint(dir, error.message)}`);
    }
    throw error;
  }

  const modules: DeployModule[] = [];
  for (const module of bundle.modules) {
    const type = MODULE_TYPES.get(module.contentType);
    if (type === undefined) {
      throw new ManifestError(
        `${configPath}: wrangler bundled ${module.name} as ${module.contentType}, a module type Shipyard does not run (check \`rules\`)`,
      );
    }
    const binary = type === "data" || type === "wasm";
    modules.push({
      // wrangler names additional modules as they are imported ("./<hash>-notes.md"); the name is
      // the module's path from the main module's folder, which is what the runtime resolves.
      name: path.posix.normalize(module.name),
      type,
      content: binary ? Buffer.from(module.bytes).toString("base64") : new TextDecoder().decode(module.bytes),
    });
  }
  const mainModule = bundle.metadata.main_module;
  if (mainModule === undefined) {
    throw new ManifestError(
      bundle.metadata.body_part === undefined
        ? `${configPath}: wrangler's upload names no main module (\`main\`)`
        : `${configPath}: \`main\` is a service-worker script (addEventListener("fetch")); Shipyard runs ES module Workers: export default { fetch }`,
    );
  }

  const vars: NonNullable<DeployManifest["config"]["vars"]> = {};
  const secrets: Record<string, string> = {};
  const durableObjects: { name: string; class_name: string }[] = [];
  let assetsBinding: string | undefined;
  for (const binding of bundle.metadata.bindings ?? []) {
    if (!SUPPORTED_BINDING_TYPES.has(binding.type)) {
      throw new ManifestError(
        `${configPath}: binding ${binding.name} is of type ${binding.type}, which Shipyard does not host; remove it from the config`,
      );
    }
    if (binding.type === "plain_text" && typeof binding.text === "string") vars[binding.name] = binding.text;
    else if (binding.type === "json") {
      const json = z.json().safeParse(binding.json);
      if (json.success) vars[binding.name] = json.data;
    } else if (binding.type === "secret_text" && typeof binding.text === "string") secrets[binding.name] = binding.text;
    else if (binding.type === "durable_object_namespace" && typeof binding.class_name === "string") {
      durableObjects.push({ name: binding.name, class_name: binding.class_name });
    } else if (binding.type === "assets") assetsBinding = binding.name;
  }

  let assets: DeployManifest["assets"];
  let assetsConfig: DeployManifest["config"]["assets"];
  if (config.assets !== undefined) {
    if (!config.assets.directory) {
      throw new ManifestError(`${configPath}: \`assets.directory\` is required (the folder of static files)`);
    }
    const directory = path.resolve(path.dirname(configPath), config.assets.directory);
    let packed;
    try {
      packed = await packAssets(directory);
    } catch (error) {
      throw new ManifestError(
        `${configPath}: assets.directory ${directory}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    for (const skipped of packed.skipped) progress(`warning: assets ${skipped.path}: ${skipped.reason}`);
    progress(`assets ${packed.files.length} files, ${(packed.bytes / 1024).toFixed(1)} KiB from ${directory}`);
    assets = packed.files;
    assetsConfig = {
      ...(assetsBinding === undefined ? {} : { binding: assetsBinding }),
      ...(config.assets.html_handling === undefined ? {} : { html_handling: config.assets.html_handling }),
      ...(config.assets.not_found_handling === undefined
        ? {}
        : { not_found_handling: config.assets.not_found_handling }),
      ...(config.assets.run_worker_first === undefined ? {} : { run_worker_first: config.assets.run_worker_first }),
      ...(packed.redirects === undefined ? {} : { _redirects: packed.redirects }),
      ...(packed.headers === undefined ? {} : { _headers: packed.headers }),
    };
  }

  const d1Databases = await d1DatabasesOf(config, configPath);
  const manifest = DeployManifestSchema.safeParse({
    project_id: projectId,
    compatibility_date: bundle.metadata.compatibility_date ?? config.compatibility_date,
    ...(present(bundle.metadata.compatibility_flags)
      ? { compatibility_flags: bundle.metadata.compatibility_flags }
      : {}),
    main_module: mainModule,
    modules,
    config: {
      ...(durableObjects.length > 0 ? { durable_objects: { bindings: durableObjects } } : {}),
      ...(config.migrations.length > 0 ? { migrations: migrationsOf(config) } : {}),
      ...(Object.keys(vars).length > 0 ? { vars } : {}),
      ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
      ...(assetsConfig === undefined ? {} : { assets: assetsConfig }),
      ...(d1Databases.length > 0 ? { d1_databases: d1Databases } : {}),
      ...(config.kv_namespaces.length > 0
        ? { kv_namespaces: config.kv_namespaces.map((namespace) => ({ binding: namespace.binding })) }
        : {}),
      ...(config.r2_buckets.length > 0
        ? { r2_buckets: config.r2_buckets.map((bucket) => ({ binding: bucket.binding })) }
        : {}),
    },
    ...(assets === undefined ? {} : { assets }),
  });
  if (!manifest.success) {
    // Issues name the manifest path (e.g. project_id, config.vars.X); never the values (secrets).
    const issues = manifest.error.issues.map(
      (issue) => `  - ${issue.path.join(".") || "(manifest)"}: ${issue.message}`,
    );
    const hint = manifest.error.issues.some((issue) => issue.path[0] === "project_id")
      ? `\n  (project_id comes from \`name\` in ${configPath}; pass --project <id> to choose another)`
      : "";
    throw new ManifestError(`the manifest for ${configPath} is not valid:\n${issues.join("\n")}${hint}`);
  }
  return manifest.data;
}

/**
 * Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 with the secret's bytes (`whsec_<base64>`)
 * over `<id>.<timestamp>.<body>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret, "base64");
  if (key.length === 0) throw new ManifestError("the webhook secret is not a whsec_<base64> secret");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body, "utf8").digest("base64")}`;
}
