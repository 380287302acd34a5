import { z } from "zod";
import { jsonBytes } from "../lib/utf8.ts";

/** Project ids double as script names on the platform: lowercase slugs. */
export const ProjectIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    "lowercase letters, digits and dashes, 1..63 characters, not starting with a dash",
  );

const IdentifierSchema = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a JavaScript identifier");
const BindingNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a binding name");

/** Binding names the platform itself gives a tenant script (the metering dataset in production). */
export const PLATFORM_BINDING_NAMES: readonly string[] = ["USAGE"];
/** Prefix of the local platform's own names in a tenant isolate (its gateway, its modules). */
export const RESERVED_BINDING_PREFIX = "__SHIPYARD";

/** Whether a tenant may not declare a binding of this name (it would shadow or be shadowed by Shipyard's). */
export function isReservedBindingName(name: string): boolean {
  return PLATFORM_BINDING_NAMES.includes(name) || name.toUpperCase().startsWith(RESERVED_BINDING_PREFIX);
}

export const ModuleTypeSchema = z.enum(["esm", "cjs", "text", "data", "wasm", "sourcemap"]);

export const DeployModuleSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9_.\-/@+]+$/, "module names are paths of letters, digits, and _ . - / @ +")
    .refine((name) => !name.split("/").includes(".."), "module names may not contain '..'"),
  type: ModuleTypeSchema,
  content: z.string().describe("text for esm/cjs/text/sourcemap, base64 for data/wasm"),
});
export type DeployModule = z.infer<typeof DeployModuleSchema>;

export const DeclaredMigrationSchema = z.strictObject({
  tag: z.string().min(1).max(64),
  new_sqlite_classes: z.array(IdentifierSchema).optional(),
  new_classes: z.array(IdentifierSchema).optional(),
  renamed_classes: z.array(z.strictObject({ from: IdentifierSchema, to: IdentifierSchema })).optional(),
  deleted_classes: z.array(IdentifierSchema).optional(),
});

/** Cloudflare's limit on one environment variable or secret (5 KiB), applied to a var's JSON text too. */
const VAR_BYTES = 5_120;

/** What Shipyard gives a tenant, in the words its refusals use. */
export const HOSTED_BINDINGS_TEXT = "vars, secrets, Durable Objects, static assets, D1, KV and R2";

/**
 * Binding kinds of a wrangler config Shipyard cannot give a tenant. A manifest naming one is refused
 * with a 400 that names it, never deployed without it.
 * Keys are wrangler's config keys; the webhook refuses them in `config`, the CLI before it signs.
 */
export const UNSUPPORTED_BINDING_KEYS = [
  "workflows",
  "ai",
  "services",
  "queues",
  "vectorize",
  "hyperdrive",
  "analytics_engine_datasets",
  "browser",
  "images",
  "send_email",
  "dispatch_namespaces",
  "mtls_certificates",
  "pipelines",
  "secrets_store_secrets",
  "ratelimits",
  "version_metadata",
  "worker_loaders",
  "vpc_services",
  "tail_consumers",
  "unsafe",
] as const;

/** The unsupported binding keys a raw (unvalidated) manifest's `config` carries, in its order. */
export function unsupportedBindingKeys(manifest: unknown): string[] {
  if (typeof manifest !== "object" || manifest === null || !("config" in manifest)) return [];
  const config: unknown = manifest.config;
  if (typeof config !== "object" || config === null) return [];
  return Object.keys(config).filter((key) => (UNSUPPORTED_BINDING_KEYS as readonly string[]).includes(key));
}

/** What the assets binding serves and how (wrangler's `assets` config, less `directory`). */
export const AssetsConfigSchema = z.strictObject({
  binding: BindingNameSchema.optional(),
  html_handling: z.enum(["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"]).optional(),
  not_found_handling: z.enum(["single-page-application", "404-page", "none"]).optional(),
  /** true / false, or route patterns (`/api/*`, `!/api/public/*`) that go to the Worker first. */
  run_worker_first: z.union([z.boolean(), z.array(z.string().min(1).max(256)).max(100)]).optional(),
  /** The assets directory's `_redirects` and `_headers` files, as text (Cloudflare parses them). */
  _redirects: z.string().max(100_000).optional(),
  _headers: z.string().max(100_000).optional(),
});
export type AssetsConfig = z.infer<typeof AssetsConfigSchema>;

/** One static asset: its URL path, a 32-hex content hash (SHA-256 prefix) and its bytes in base64. */
export const AssetFileSchema = z.strictObject({
  path: z
    .string()
    .min(2)
    .max(1024)
    .regex(/^\/[^\0]*$/, "an absolute URL path such as /index.html")
    .refine((name) => !name.split("/").includes(".."), "asset paths may not contain '..'"),
  hash: z.string().regex(/^[0-9a-f]{32}$/, "32 lowercase hex characters"),
  size: z
    .number()
    .int()
    .min(0)
    .max(25 * 1024 * 1024),
  content_type: z.string().min(1).max(256).optional(),
  content: z.string().describe("the file's bytes, base64"),
});
export type AssetFile = z.infer<typeof AssetFileSchema>;

/** One migration file of a D1 binding's `migrations_dir` (read by the CLI, applied in order). */
export const D1MigrationSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9_.-]+$/, "a migration file name such as 0001_init.sql"),
  sql: z.string().min(1).max(1_000_000),
});

/**
 * A D1 binding of the tenant. Shipyard provisions the database (one per project and binding), so
 * wrangler's `database_name` / `database_id` are not sent; `migrations` are the files of
 * `migrations_dir`, applied forward-only by the deploy.
 */
export const D1BindingConfigSchema = z.strictObject({
  binding: BindingNameSchema,
  migrations: z
    .array(D1MigrationSchema)
    .max(1000)
    .refine((list) => new Set(list.map((m) => m.name)).size === list.length, "migration names must be unique")
    .optional(),
});
export type D1BindingConfig = z.infer<typeof D1BindingConfigSchema>;

const ManifestConfigSchema = z
  .looseObject({
    durable_objects: z
      .strictObject({
        bindings: z.array(z.strictObject({ name: BindingNameSchema, class_name: IdentifierSchema })).max(64),
      })
      .optional(),
    migrations: z.array(DeclaredMigrationSchema).max(256).optional(),
    /** Plain vars of any JSON type (wrangler's `vars`): strings bind as text, the rest as parsed JSON. */
    vars: z
      .record(
        BindingNameSchema,
        z.json().refine((value) => jsonBytes(value) <= VAR_BYTES, `a var is at most ${VAR_BYTES} bytes of JSON`),
      )
      .optional(),
    /** Secret text bindings; never logged, never returned by the API, never in the audit log. */
    secrets: z.record(BindingNameSchema, z.string().max(VAR_BYTES)).optional(),
    assets: AssetsConfigSchema.optional(),
    d1_databases: z.array(D1BindingConfigSchema).max(32).optional(),
    /** KV bindings; Shipyard provisions the namespace (one per project and binding), wrangler's `id` is not sent. */
    kv_namespaces: z
      .array(z.strictObject({ binding: BindingNameSchema }))
      .max(32)
      .optional(),
    /** R2 bindings; Shipyard provisions the bucket (one per project and binding), wrangler's `bucket_name` is not sent. */
    r2_buckets: z
      .array(z.strictObject({ binding: BindingNameSchema }))
      .max(32)
      .optional(),
  })
  .superRefine((config, ctx) => {
    const allowed = new Set([
      "durable_objects",
      "migrations",
      "vars",
      "secrets",
      "assets",
      "d1_databases",
      "kv_namespaces",
      "r2_buckets",
    ]);
    for (const key of Object.keys(config)) {
      if (allowed.has(key)) continue;
      const known = (UNSUPPORTED_BINDING_KEYS as readonly string[]).includes(key);
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: known
          ? `unsupported binding: ${key} (Shipyard hosts vars, secrets, Durable Objects, static assets, D1, KV and R2; this binding is refused rather than dropped)`
          : `unknown config key: ${key}`,
        params: { unsupported_binding: key },
      });
    }
    const names = [
      ...(config.durable_objects?.bindings ?? []).map((binding) => binding.name),
      ...Object.keys(config.vars ?? {}),
      ...Object.keys(config.secrets ?? {}),
      ...(config.assets?.binding === undefined ? [] : [config.assets.binding]),
      ...(config.d1_databases ?? []).map((database) => database.binding),
      ...(config.kv_namespaces ?? []).map((namespace) => namespace.binding),
      ...(config.r2_buckets ?? []).map((bucket) => bucket.binding),
    ];
    const seen = new Set<string>();
    for (const name of names) {
      if (isReservedBindingName(name)) {
        ctx.addIssue({
          code: "custom",
          message: `binding name ${name} is reserved by Shipyard (USAGE and names starting with ${RESERVED_BINDING_PREFIX}); rename it`,
          params: { reserved_binding: name },
        });
      }
      if (seen.has(name)) ctx.addIssue({ code: "custom", message: `binding name ${name} is used more than once` });
      seen.add(name);
    }
  });

export const DeployManifestSchema = z
  .strictObject({
    project_id: ProjectIdSchema,
    compatibility_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD"),
    compatibility_flags: z.array(z.string().min(1).max(64)).max(32).optional(),
    main_module: z.string().min(1).max(256),
    modules: z.array(DeployModuleSchema).min(1).max(1000),
    config: ManifestConfigSchema.default({}),
    /** The static assets `config.assets` serves, packed by the sender (at most 20,000 files). */
    assets: z.array(AssetFileSchema).max(20_000).optional(),
  })
  .superRefine((manifest, ctx) => {
    const paths = new Set<string>();
    for (const [index, file] of (manifest.assets ?? []).entries()) {
      if (paths.has(file.path))
        ctx.addIssue({ code: "custom", path: ["assets", index, "path"], message: `asset ${file.path} appears twice` });
      paths.add(file.path);
    }
    if (manifest.assets !== undefined && manifest.config.assets === undefined) {
      ctx.addIssue({ code: "custom", path: ["config", "assets"], message: "assets were sent without config.assets" });
    }
  });
export type DeployManifest = z.infer<typeof DeployManifestSchema>;

export const DeployKindSchema = z.enum(["deploy", "rollback", "down"]);
export type DeployKind = z.infer<typeof DeployKindSchema>;

export const DeployAcceptedSchema = z.object({
  deploy_id: z.string(),
  status_url: z.string(),
  project_id: z.string().optional(),
  deploy_secret: z
    .string()
    .optional()
    .describe(
      "only in the answer to a project's first deploy (and its retries): the project's own deploy signing secret (whsec_…), shown once; every later deploy of the project must be signed with it",
    ),
  duplicate: z.boolean().optional().describe("true when this webhook-id was seen before: the first answer, repeated"),
});

/** `POST /v1/projects/:id/deploy-secret/rotate`: the project's new deploy secret, shown once. */
export const DeploySecretRotatedSchema = z.object({
  project_id: z.string(),
  deploy_secret: z.string().describe("whsec_…: sign every later deploy of the project with it; the old one is refused"),
  rotated_at: z.number().int().describe("epoch ms"),
});
export type DeployAccepted = z.infer<typeof DeployAcceptedSchema>;

export const DeployStepSchema = z.object({
  name: z.string(),
  state: z.enum(["running", "complete", "errored"]),
  attempts: z.number().int(),
  started_at: z.number().int().nullable(),
  finished_at: z.number().int().nullable(),
  output: z.unknown().optional(),
  error: z.string().nullable(),
});
export type DeployStep = z.infer<typeof DeployStepSchema>;

export const DeployStatusSchema = z.object({
  deploy_id: z.string(),
  project_id: z.string(),
  kind: DeployKindSchema,
  status: z.enum(["queued", "running", "complete", "errored"]),
  steps: z.array(DeployStepSchema),
  migration: z.unknown().nullable(),
  error: z.string().nullable(),
  version_id: z.string().nullable(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
});
export type DeployStatus = z.infer<typeof DeployStatusSchema>;

/** A resource Shipyard provisioned for the project (`tenant_resources`). */
export const ProjectResourceSchema = z.object({
  kind: z.enum(["d1", "kv", "r2"]),
  binding: z.string(),
  name: z.string(),
  id: z.string(),
  size_bytes: z.number().int().nullable().describe("null when the platform did not say"),
  created_at: z.number().int(),
});
export type ProjectResource = z.infer<typeof ProjectResourceSchema>;

export const ProjectStatusSchema = z.object({
  project_id: z.string(),
  status: z.enum(["active", "deleted"]),
  has_durable_objects: z.boolean(),
  do_classes: z.array(z.string()),
  do_migration_tag: z.string().nullable(),
  do_enforcement_status: z.enum(["none", "enforced"]),
  current_deploy_id: z.string().nullable(),
  previous_deploy_id: z.string().nullable(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
});
export type ProjectStatus = z.infer<typeof ProjectStatusSchema>;

/** `GET /v1/projects/:id`: the status and the resources Shipyard provisioned for the project. */
export const ProjectDetailSchema = ProjectStatusSchema.extend({ resources: z.array(ProjectResourceSchema) });
export type ProjectDetail = z.infer<typeof ProjectDetailSchema>;

/** `GET /v1/projects`. */
export const ProjectListSchema = z.object({ projects: z.array(ProjectStatusSchema) });

/** `DELETE /v1/projects/:id` query: the project id again, to confirm the data loss the 409 named. */
export const ProjectDeleteQuerySchema = z.object({
  confirm: z.string().max(64).optional().describe("the project id: confirms the Durable Object storage loss"),
});

/** `:id` of the project routes. */
export const ProjectParamsSchema = z.object({ id: ProjectIdSchema });

/** `:id` and `:binding` of a project's resource. */
export const ResourceParamsSchema = z.object({ id: ProjectIdSchema, binding: BindingNameSchema });

/** `POST /v1/projects/:id/resources/:binding/export`: a D1 database as SQL (schema and rows). */
export const ResourceExportSchema = z.object({
  project_id: z.string(),
  binding: z.string(),
  kind: z.literal("d1"),
  name: z.string(),
  sql: z.string(),
});

/** `:id` of `GET /v1/deploys/:id`. */
export const DeployParamsSchema = z.object({ id: z.string().min(1).max(128) });
