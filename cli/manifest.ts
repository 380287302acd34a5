/**
 * `shipyard deploy <dir>`: reads a tenant's wrangler.toml and modules into the deploy manifest the
 * webhook takes (../shared/CONTRACT.md "Deploy webhook"), and signs it like a CI sender would
 * (Standard Webhooks). TOML is parsed with smol-toml (why: docs/decisions/0008-cli.md).
 */
import { createHmac } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { type DeployManifest, DeployManifestSchema } from "../schemas/deploy.schema.ts";

/** The local webhook secret (.dev.vars.example); production senders set SHIPYARD_WEBHOOK_SECRET. */
export const DEFAULT_WEBHOOK_SECRET = "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1zaGlweWFyZA==";

/** A tenant directory or config that cannot become a manifest (exit 1, with what to fix). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** The parts of a wrangler config Shipyard deploys; everything else in the file is ignored. */
const WranglerConfigSchema = z.looseObject({
  name: z.string().optional(),
  main: z.string({ error: "`main` (the Worker's entry module) is required" }),
  compatibility_date: z.string({ error: "`compatibility_date` is required (a quoted YYYY-MM-DD)" }),
  compatibility_flags: z.array(z.string()).optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
  durable_objects: z
    .looseObject({
      bindings: z
        .array(z.looseObject({ name: z.string(), class_name: z.string(), script_name: z.string().optional() }))
        .optional(),
    })
    .optional(),
  migrations: z
    .array(
      z.looseObject({
        tag: z.string(),
        new_sqlite_classes: z.array(z.string()).optional(),
        new_classes: z.array(z.string()).optional(),
        renamed_classes: z.array(z.object({ from: z.string(), to: z.string() })).optional(),
        deleted_classes: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

/** Module types by extension: what the main module's folder contributes besides the main module. */
const MODULE_TYPES = new Map<string, "esm" | "cjs" | "wasm" | "text">([
  [".js", "esm"],
  [".mjs", "esm"],
  [".cjs", "cjs"],
  [".wasm", "wasm"],
  [".txt", "text"],
]);

/** Every file below `dir` (no node_modules, no dot folders), as paths relative to `root`. */
async function filesUnder(root: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const relative = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      found.push(...(await filesUnder(root, relative)));
    } else if (entry.isFile()) {
      found.push(relative);
    }
  }
  return found;
}

/** Overrides for `readManifest`. */
export interface ReadOptions {
  /** Overrides the project id (default: the config's `name`). */
  projectId?: string;
  /** Config file, relative to `dir` (default wrangler.toml). */
  config?: string;
}

/**
 * The manifest for the tenant in `dir`: the main module and every .js/.mjs/.cjs/.wasm/.txt file
 * under the main module's folder (module names relative to `dir`), Durable Object bindings,
 * migrations and vars from the config, validated against the webhook's own schema.
 */
export async function readManifest(dir: string, options: ReadOptions = {}): Promise<DeployManifest> {
  const configPath = path.resolve(dir, options.config ?? "wrangler.toml");
  let source: string;
  try {
    source = await readFile(configPath, "utf8");
  } catch (error) {
    throw new ManifestError(`cannot read ${configPath}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let raw: unknown;
  try {
    raw = configPath.endsWith(".json") ? JSON.parse(source) : parseToml(source);
  } catch (error) {
    throw new ManifestError(
      `${configPath} is not valid ${configPath.endsWith(".json") ? "JSON" : "TOML"}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const parsed = WranglerConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ManifestError(`${configPath}: ${z.prettifyError(parsed.error)}`);
  const config = parsed.data;

  const root = path.dirname(configPath);
  const main = path.posix.normalize(config.main.replaceAll("\\", "/")).replace(/^\.\//, "");
  if (main.startsWith("../") || path.isAbsolute(main))
    throw new ManifestError(`main ${config.main} must be inside ${root}`);
  const mainType = MODULE_TYPES.get(path.extname(main));
  if (mainType !== "esm" && mainType !== "cjs") {
    throw new ManifestError(`main ${config.main} must be built JavaScript (.js, .mjs or .cjs); build the Worker first`);
  }
  const mainDir = path.posix.dirname(main) === "." ? "" : path.posix.dirname(main);
  let files: string[];
  try {
    files = await filesUnder(root, mainDir);
  } catch (error) {
    throw new ManifestError(
      `cannot read ${path.join(root, mainDir)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!files.includes(main)) throw new ManifestError(`main module ${main} not found in ${root}`);
  const names = [main, ...files.filter((file) => file !== main && MODULE_TYPES.has(path.extname(file))).toSorted()];
  const modules = await Promise.all(
    names.map(async (name) => {
      const type = MODULE_TYPES.get(path.extname(name)) ?? "text";
      const bytes = await readFile(path.join(root, name));
      return { name, type, content: type === "wasm" ? bytes.toString("base64") : bytes.toString("utf8") };
    }),
  );

  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.vars ?? {})) {
    if (typeof value !== "string") throw new ManifestError(`vars.${name}: Shipyard deploys string vars only`);
    vars[name] = value;
  }
  const bindings = config.durable_objects?.bindings ?? [];
  const external = bindings.find((binding) => binding.script_name !== undefined);
  if (external) {
    throw new ManifestError(
      `durable_objects binding ${external.name} points at another Worker (script_name); not supported`,
    );
  }

  const projectId = options.projectId ?? config.name;
  if (!projectId) throw new ManifestError(`${configPath} has no \`name\`; pass --project <id>`);
  const manifest = DeployManifestSchema.safeParse({
    project_id: projectId,
    compatibility_date: config.compatibility_date,
    ...(config.compatibility_flags ? { compatibility_flags: config.compatibility_flags } : {}),
    main_module: main,
    modules,
    config: {
      durable_objects: {
        bindings: bindings.map((binding) => ({ name: binding.name, class_name: binding.class_name })),
      },
      ...(config.migrations
        ? {
            migrations: config.migrations.map((migration) => ({
              tag: migration.tag,
              ...(migration.new_sqlite_classes ? { new_sqlite_classes: migration.new_sqlite_classes } : {}),
              ...(migration.new_classes ? { new_classes: migration.new_classes } : {}),
              ...(migration.renamed_classes ? { renamed_classes: migration.renamed_classes } : {}),
              ...(migration.deleted_classes ? { deleted_classes: migration.deleted_classes } : {}),
            })),
          }
        : {}),
      vars,
    },
  });
  if (!manifest.success)
    throw new ManifestError(`the manifest for ${root} is not valid: ${z.prettifyError(manifest.error)}`);
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
