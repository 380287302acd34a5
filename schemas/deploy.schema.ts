import { z } from "zod";

/** Project ids double as script names on the platform: lowercase slugs. */
export const ProjectIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    "lowercase letters, digits and dashes, 1..63 characters, not starting with a dash",
  );

const IdentifierSchema = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a JavaScript identifier");
const BindingNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a binding name");

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

export const DeployManifestSchema = z.strictObject({
  project_id: ProjectIdSchema,
  compatibility_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD"),
  compatibility_flags: z.array(z.string().min(1).max(64)).max(32).optional(),
  main_module: z.string().min(1).max(256),
  modules: z.array(DeployModuleSchema).min(1).max(1000),
  config: z
    .strictObject({
      durable_objects: z
        .strictObject({
          bindings: z.array(z.strictObject({ name: BindingNameSchema, class_name: IdentifierSchema })).max(64),
        })
        .optional(),
      migrations: z.array(DeclaredMigrationSchema).max(256).optional(),
      vars: z.record(BindingNameSchema, z.string().max(5_120)).optional(),
    })
    .default({}),
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

/** `GET /v1/projects`. */
export const ProjectListSchema = z.object({ projects: z.array(ProjectStatusSchema) });

/** `DELETE /v1/projects/:id` query: the project id again, to confirm the data loss the 409 named. */
export const ProjectDeleteQuerySchema = z.object({
  confirm: z.string().max(64).optional().describe("the project id: confirms the Durable Object storage loss"),
});
