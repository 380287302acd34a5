/**
 * Wrangler, used as a library and as a program, from Shipyard's own install (not the tenant's):
 * `shipyard deploy` must work the same from any directory, and on a project that has no wrangler
 * of its own. Two things are taken from it, so a tenant deploys exactly as `wrangler deploy` would:
 *
 *  - the config: `unstable_readConfig` finds wrangler.json / wrangler.jsonc / wrangler.toml (or
 *    the redirected config a Vite build writes to `.wrangler/deploy/config.json`), parses JSONC and
 *    TOML, and validates every key with the error messages wrangler users know;
 *  - the bundle: `wrangler deploy --dry-run --outfile` writes the very multipart upload wrangler
 *    would send to Cloudflare (metadata with every binding converted, and each module with its
 *    content type: TypeScript, npm dependencies, `rules`, `alias`, `define`, `nodejs_compat` and
 *    source maps all handled by wrangler's esbuild setup).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { z } from "zod";

/**
 * The parts of wrangler's normalised config (`unstable_readConfig`) Shipyard reads; the rest is
 * kept as is (looseObject) so every key can be checked for what Shipyard cannot host.
 */
const WranglerConfigSchema = z.looseObject({
  configPath: z.string().optional(),
  userConfigPath: z.string().optional(),
  name: z.string().optional(),
  compatibility_date: z.string().optional(),
  durable_objects: z
    .looseObject({
      bindings: z.array(
        z.looseObject({ name: z.string(), class_name: z.string(), script_name: z.string().optional() }),
      ),
    })
    .default({ bindings: [] }),
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
    .default([]),
  assets: z
    .looseObject({
      directory: z.string().optional(),
      binding: z.string().optional(),
      html_handling: z.enum(["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"]).optional(),
      not_found_handling: z.enum(["single-page-application", "404-page", "none"]).optional(),
      run_worker_first: z.union([z.boolean(), z.array(z.string())]).optional(),
    })
    .optional(),
  triggers: z.looseObject({ crons: z.array(z.string()).optional() }).default({}),
  d1_databases: z.array(z.looseObject({ binding: z.string(), migrations_dir: z.string().optional() })).default([]),
  kv_namespaces: z.array(z.looseObject({ binding: z.string() })).default([]),
  r2_buckets: z.array(z.looseObject({ binding: z.string() })).default([]),
});
export type WranglerConfig = z.infer<typeof WranglerConfigSchema>;

/** A config or bundle problem the user fixes in their project (exit 1, with what to fix). */
export class WranglerError extends Error {
  override name = "WranglerError";
}

const require = createRequire(import.meta.url);

/** Shipyard's wrangler: its package directory and version. */
function wranglerPackage(): { dir: string; version: string; bin: string } {
  const manifestPath = require.resolve("wrangler/package.json");
  const dir = path.dirname(manifestPath);
  // wrangler's package.json is JSON it ships; only these two fields are read.
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion
  const manifest = require(manifestPath) as { version: string; bin: { wrangler: string } | string };
  const bin = typeof manifest.bin === "string" ? manifest.bin : manifest.bin.wrangler;
  return { dir, version: manifest.version, bin: path.join(dir, bin) };
}

/**
 * Environment for wrangler runs: no telemetry, no colours in captured output, and the project's
 * `node_modules/.bin` folders first on PATH (the project's and its parents', as `npm run` puts
 * them), so a custom `build.command` finds the project's tools as under `npm run deploy`.
 */
function wranglerEnv(dir: string): NodeJS.ProcessEnv {
  const bins: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    bins.push(path.join(current, "node_modules", ".bin"));
    if (path.dirname(current) === current) break;
  }
  return {
    ...process.env,
    PATH: [...bins, process.env.PATH ?? ""].join(path.delimiter),
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    FORCE_COLOR: "0",
    NO_COLOR: "1",
  };
}

/**
 * Reads the tenant's config with wrangler's own reader, as `wrangler deploy` run in `dir` would
 * (`config`, if given, is relative to `dir`). Throws `WranglerError` with wrangler's diagnostics,
 * which name the file and the key, or when no config file exists.
 */
export async function readWranglerConfig(dir: string, config?: string, env?: string): Promise<WranglerConfig> {
  const wrangler = wranglerPackage();
  // Imported by path: a bare "wrangler" would resolve from the tenant's cwd for some loaders.
  const api: { unstable_readConfig: (args: { config?: string; env?: string }, options: object) => unknown } =
    await import(pathToFileURL(path.join(wrangler.dir, "wrangler-dist", "cli.js")).href);
  const root = path.resolve(dir);
  const previous = process.cwd();
  const previousLog = process.env.WRANGLER_LOG;
  // wrangler finds the config (and the Vite redirect) from the working directory. readConfig is
  // synchronous, so this chdir is never observed by other code of this process.
  process.chdir(root);
  // Its informational lines ("Using redirected Wrangler configuration") would land on stdout,
  // which --json keeps for the answer; warnings and errors still print (to stderr).
  process.env.WRANGLER_LOG = "warn";
  try {
    const read = api.unstable_readConfig(
      {
        ...(config === undefined ? {} : { config: path.resolve(root, config) }),
        ...(env === undefined ? {} : { env }),
      },
      { useRedirectIfAvailable: true },
    );
    const parsed = WranglerConfigSchema.safeParse(read);
    if (!parsed.success)
      throw new WranglerError(`wrangler's config has an unexpected shape: ${z.prettifyError(parsed.error)}`);
    if (parsed.data.configPath === undefined) {
      throw new WranglerError(
        `no wrangler.jsonc, wrangler.json or wrangler.toml in ${root} or its parents; create one or pass --config <file>`,
      );
    }
    return parsed.data;
  } catch (error) {
    if (error instanceof WranglerError) throw error;
    const where = config === undefined ? root : path.resolve(root, config);
    throw new WranglerError(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    process.chdir(previous);
    if (previousLog === undefined) delete process.env.WRANGLER_LOG;
    else process.env.WRANGLER_LOG = previousLog;
  }
}

/** One part of wrangler's upload: a module with its content type. */
export interface BundledModule {
  name: string;
  contentType: string;
  bytes: Uint8Array;
}

/** wrangler's upload, as `wrangler deploy` would have sent it. */
export interface WranglerBundle {
  /** The `metadata` part: main_module, bindings (API shapes), compatibility date and flags. */
  metadata: {
    main_module?: string;
    bindings?: { name: string; type: string; [key: string]: unknown }[];
    compatibility_date?: string;
    compatibility_flags?: string[];
    [key: string]: unknown;
  };
  modules: BundledModule[];
  wranglerVersion: string;
}

export interface BundleOptions {
  /** The config file wrangler read (absolute). */
  configPath: string;
  /** Whether wrangler used the redirected config of a build tool (then wrangler must find it itself). */
  redirected: boolean;
  /** A secrets file (.dev.vars / .env / JSON) for `--secrets-file`, absolute. */
  secretsFile?: string;
  /** A wrangler environment (`env.<name>` in the config), as `wrangler deploy --env`. */
  env?: string;
  /** Each line wrangler prints while it bundles (progress for people). */
  onLine?: (line: string) => void;
}

/**
 * Bundles the project in `dir` with `wrangler deploy --dry-run --outfile` and parses the upload it
 * wrote. The temporary directory (which holds secret values when `secretsFile` is given) is
 * removed before this returns.
 */
export async function bundleWithWrangler(dir: string, options: BundleOptions): Promise<WranglerBundle> {
  const wrangler = wranglerPackage();
  const out = await mkdtemp(path.join(tmpdir(), "shipyard-bundle-"));
  try {
    const outfile = path.join(out, "upload.form");
    const args = [
      wrangler.bin,
      "deploy",
      "--dry-run",
      "--outfile",
      outfile,
      "--outdir",
      path.join(out, "dist"),
      "--upload-source-maps",
      ...(options.redirected ? [] : ["--config", options.configPath]),
      ...(options.secretsFile === undefined ? [] : ["--secrets-file", options.secretsFile]),
      ...(options.env === undefined ? [] : ["--env", options.env]),
    ];
    const lines: string[] = [];
    const onData = (chunk: string) => {
      for (const line of stripVTControlCharacters(chunk).split(/\r?\n/)) {
        if (line.trim() === "") continue;
        lines.push(line);
        options.onLine?.(line);
      }
    };
    const code = await new Promise<number | null>((resolve, reject) => {
      // process.execPath: the Node running this CLI (the pinned Node 24), which wrangler requires.
      const child = spawn(process.execPath, args, {
        cwd: path.resolve(dir),
        env: wranglerEnv(dir),
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.setEncoding("utf8").on("data", onData);
      child.stderr.setEncoding("utf8").on("data", onData);
      child.on("error", reject);
      child.on("close", resolve);
    });
    if (code !== 0) {
      const output = lines
        .filter((line) => !/^\s*[─⛅]/.test(line))
        .slice(-30)
        .join("\n");
      throw new WranglerError(`wrangler ${wrangler.version} could not bundle ${dir} (exit ${code}):\n${output}`);
    }
    return { ...(await parseUpload(await readFile(outfile))), wranglerVersion: wrangler.version };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** Parses the multipart upload wrangler wrote (its first line is the boundary). */
async function parseUpload(bytes: Buffer): Promise<Omit<WranglerBundle, "wranglerVersion">> {
  const firstLine = bytes.subarray(0, bytes.indexOf("\r\n")).toString("utf8");
  if (!firstLine.startsWith("--")) throw new WranglerError("wrangler's upload file is not multipart form data");
  const form = await new Response(new Uint8Array(bytes), {
    headers: { "content-type": `multipart/form-data; boundary=${firstLine.slice(2)}` },
  }).formData();
  let metadata: WranglerBundle["metadata"] | undefined;
  const modules: BundledModule[] = [];
  for (const [name, part] of form.entries()) {
    if (name === "metadata") {
      const text = typeof part === "string" ? part : await part.text();
      // wrangler wrote this JSON; its fields are checked where they are used.
      // oxlint-disable-next-line typescript/no-unsafe-type-assertion
      metadata = JSON.parse(text) as WranglerBundle["metadata"];
      continue;
    }
    if (typeof part === "string") continue;
    modules.push({
      name,
      contentType: part.type.split(";")[0]?.trim() ?? "",
      bytes: new Uint8Array(await part.arrayBuffer()),
    });
  }
  if (metadata === undefined) throw new WranglerError("wrangler's upload has no metadata part");
  return { metadata, modules };
}
