/**
 * `deploy <dir>`, `rollback <project>`, `down <project>`: start a deploy, rollback or down and,
 * with `--wait`, follow its workflow step by step until it completes or errors.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { DeployAccepted, DeployStatus, DeployStep } from "../../schemas/deploy.schema.ts";
import { type ApiClient, ApiError, apiFrom } from "../api.ts";
import { UsageError, intOption, parseCommand, positionalArgs } from "../args.ts";
import { type Command, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "../command.ts";
import type { DeployManifest } from "../../schemas/deploy.schema.ts";
import { DEFAULT_WEBHOOK_SECRET, DEPLOY_LIMIT_BYTES, ManifestError, readManifest, signWebhook } from "../manifest.ts";
import { confirm, interactive, keyValues, note, print, printJson } from "../output.ts";

const WAIT_OPTIONS = {
  wait: { type: "boolean" },
  timeout: { type: "string" },
} as const;

const WAIT_HELP = `  --wait           follow the workflow until it completes or errors (exit 1 if it errors)
  --timeout <s>    give up waiting after this many seconds (default 120)`;

function stepLine(step: DeployStep): string {
  const mark = step.state === "complete" ? "✓" : step.state === "errored" ? "✗" : "…";
  const took =
    step.started_at !== null && step.finished_at !== null ? `, ${step.finished_at - step.started_at} ms` : "";
  const attempts = `${step.attempts} attempt${step.attempts === 1 ? "" : "s"}`;
  return `  ${mark} ${step.name} (${attempts}${took})${step.error ? `: ${step.error}` : ""}`;
}

/**
 * Polls `GET /v1/deploys/:id` until the deploy is complete or errored, printing each step once it
 * finishes (people) or the final status (`--json`). Exit 0 complete, 1 errored or timed out.
 */
export async function followDeploy(
  api: ApiClient,
  deployId: string,
  json: boolean,
  timeoutS: number,
  /** Fields of the accepted answer the final JSON must keep (a project's new deploy secret). */
  extra: Record<string, unknown> = {},
): Promise<number> {
  const printed = new Set<string>();
  const deadline = Date.now() + timeoutS * 1000;
  let status: DeployStatus | null = null;
  for (;;) {
    status = await api.call("getDeploy", { params: { id: deployId } });
    if (!json) {
      for (const step of status.steps) {
        const key = `${step.name}:${step.state}`;
        if (step.state !== "running" && !printed.has(key)) {
          printed.add(key);
          print(stepLine(step));
        }
      }
    }
    if (status.status === "complete" || status.status === "errored") break;
    if (Date.now() > deadline) {
      note(`error: deploy ${deployId} is still ${status.status} after ${timeoutS} s (GET /v1/deploys/${deployId})`);
      if (json) printJson({ ...status, ...extra });
      return EXIT_FAILURE;
    }
    await sleep(500);
  }
  if (json) printJson({ ...status, ...extra });
  else if (status.status === "complete") {
    print(`${status.kind} ${deployId} complete${status.version_id ? ` (version ${status.version_id})` : ""}`);
  } else print(`${status.kind} ${deployId} errored: ${status.error ?? "unknown error"}`);
  return status.status === "complete" ? EXIT_OK : EXIT_FAILURE;
}

function accepted(json: boolean, what: string, answer: DeployAccepted, wait: boolean): void {
  if (json) {
    if (!wait) printJson(answer);
    return;
  }
  print(`${what} ${answer.deploy_id} queued (status: ${answer.status_url})`);
}

/** The secret that signs a deploy, and the key id that names it (none for the shared secret). */
interface DeploySigner {
  secret: string;
  keyId: string | null;
}

/**
 * The project's own deploy secret (`--deploy-secret-file`, else `SHIPYARD_DEPLOY_SECRET`), sent with
 * `shipyard-key-id: <project>`; without one, the shared webhook secret, which only creates projects.
 */
async function deploySigner(secretFile: string | undefined, projectId: string): Promise<DeploySigner> {
  if (secretFile !== undefined) {
    let text: string;
    try {
      text = await readFile(secretFile, "utf8");
    } catch (error) {
      throw new UsageError(
        `cannot read --deploy-secret-file ${secretFile}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const secret = text.trim();
    if (!secret.startsWith("whsec_"))
      throw new UsageError(`--deploy-secret-file ${secretFile} does not hold a whsec_… secret`);
    return { secret, keyId: projectId };
  }
  const own = process.env.SHIPYARD_DEPLOY_SECRET;
  if (own) return { secret: own.trim(), keyId: projectId };
  return { secret: process.env.SHIPYARD_WEBHOOK_SECRET || DEFAULT_WEBHOOK_SECRET, keyId: null };
}

/** A project's new deploy secret, printed once with where to keep it (the API never shows it again). */
function printNewSecret(projectId: string, secret: string): void {
  note(`project ${projectId} was created; its deploy secret (shown once, never again):`);
  print(secret);
  note(
    `Keep it in your CI's secret store as SHIPYARD_DEPLOY_SECRET (or in a file for --deploy-secret-file): every later deploy of ${projectId} must be signed with it; the shared webhook secret only creates projects. Lost it? An admin runs: shipyard projects rotate-secret ${projectId}`,
  );
}

/** One line on what is being sent: names only, never a secret's value. */
function deploySummary(manifest: DeployManifest, bytes: number): string {
  const parts = [
    `${manifest.modules.length} module${manifest.modules.length === 1 ? "" : "s"} (main ${manifest.main_module})`,
  ];
  const vars = Object.keys(manifest.config.vars ?? {});
  if (vars.length > 0) parts.push(`vars ${vars.join(", ")}`);
  const secrets = Object.keys(manifest.config.secrets ?? {});
  if (secrets.length > 0) parts.push(`secrets ${secrets.join(", ")} (values hidden)`);
  const objects = manifest.config.durable_objects?.bindings ?? [];
  if (objects.length > 0) parts.push(`Durable Objects ${objects.map((b) => `${b.name} (${b.class_name})`).join(", ")}`);
  if (manifest.assets !== undefined) parts.push(`${manifest.assets.length} assets`);
  return `deploying ${manifest.project_id}: ${parts.join("; ")}; ${(bytes / 1024).toFixed(1)} KiB`;
}

const deploy: Command = {
  path: ["deploy"],
  synopsis: "<dir> [--project <id>] [--config <file>] [--env <name>] [--secrets-file <file>] [--wait]",
  summary: "bundle a Worker project with wrangler, then sign and post it (Standard Webhooks)",
  options: `  --project <id>   project id (default: the config's \`name\`)
  --config <file>  wrangler config inside <dir> (default: wrangler.json, .jsonc or .toml, found as wrangler does,
                   or the redirected config a Vite build wrote to .wrangler/deploy/config.json)
  --env <name>     a wrangler environment of the config (env.<name>), as \`wrangler deploy --env\`
  --secrets-file <file>  secrets to bind (.dev.vars / .env format or JSON, as \`wrangler deploy --secrets-file\`;
                   environment variables of the same name override); values are never printed
  --webhook-id <id> delivery id (default a new one; repeat one to make a retry idempotent)
  --deploy-secret-file <f> the project's deploy secret, read from a file (overrides SHIPYARD_DEPLOY_SECRET)
${WAIT_HELP}
Environment: SHIPYARD_DEPLOY_SECRET (the project's own deploy secret, returned by its first deploy);
without it SHIPYARD_WEBHOOK_SECRET (the shared secret, which only creates projects; default the local
whsec_… secret from .dev.vars.example)`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...WAIT_OPTIONS,
      project: { type: "string" },
      config: { type: "string" },
      "secrets-file": { type: "string" },
      env: { type: "string" },
      "webhook-id": { type: "string" },
      "deploy-secret-file": { type: "string" },
    });
    const [dir = "."] = positionalArgs(positionals, ["dir"]);
    const timeout = intOption("timeout", values.timeout) ?? 120;
    const api = apiFrom(values);
    const manifest = await readManifest(dir, {
      ...(values.project === undefined ? {} : { projectId: values.project }),
      ...(values.config === undefined ? {} : { config: values.config }),
      ...(values["secrets-file"] === undefined ? {} : { secretsFile: values["secrets-file"] }),
      ...(values.env === undefined ? {} : { env: values.env }),
      onProgress: (line) => note(line),
    });
    const body = JSON.stringify(manifest);
    const bytes = Buffer.byteLength(body);
    if (bytes > DEPLOY_LIMIT_BYTES) {
      const assetBytes = (manifest.assets ?? []).reduce((sum, file) => sum + file.content.length, 0);
      throw new ManifestError(
        `the deploy is ${(bytes / 1048576).toFixed(1)} MiB (assets ${(assetBytes / 1048576).toFixed(1)} MiB as base64), over the 25 MiB deploy limit; shrink assets.directory or the bundle`,
      );
    }
    const id = values["webhook-id"] ?? `msg_${crypto.randomUUID()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const signer = await deploySigner(values["deploy-secret-file"], manifest.project_id);
    if (!values.json) {
      note(deploySummary(manifest, bytes));
    }
    const answer = await api.call("postDeploy", {
      body: manifest,
      rawBody: body,
      headers: {
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(signer.secret, id, timestamp, body),
        ...(signer.keyId === null ? {} : { "shipyard-key-id": signer.keyId }),
      },
    });
    accepted(values.json === true, "deploy", answer, values.wait === true);
    const secret = answer.deploy_secret;
    if (secret !== undefined && !values.json) printNewSecret(manifest.project_id, secret);
    if (!values.wait) return EXIT_OK;
    return followDeploy(
      api,
      answer.deploy_id,
      values.json === true,
      timeout,
      secret === undefined ? {} : { deploy_secret: secret },
    );
  },
};

const rollback: Command = {
  path: ["rollback"],
  synopsis: "<project> [--wait]",
  summary: "re-deploy the project's previous version (no Durable Object migration)",
  options: WAIT_HELP,
  async run(args) {
    const { values, positionals } = parseCommand(args, WAIT_OPTIONS);
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const timeout = intOption("timeout", values.timeout) ?? 120;
    const api = apiFrom(values);
    const answer = await api.call("rollbackProject", { params: { id: project } });
    accepted(values.json === true, "rollback", answer, values.wait === true);
    return values.wait ? followDeploy(api, answer.deploy_id, values.json === true, timeout) : EXIT_OK;
  },
};

const ConfirmDetailsSchema = z.looseObject({
  do_classes: z.array(z.string()).default([]),
  resources: z.array(z.object({ kind: z.enum(["d1", "kv", "r2"]), binding: z.string(), name: z.string() })).default([]),
});

const RESOURCE_KINDS = { d1: "D1 database", kv: "KV namespace", r2: "R2 bucket" } as const;

/** Where `--export <file>` writes a binding's SQL: the file itself for one database, else `<file>.<BINDING>.sql`-style. */
export function exportPath(file: string, binding: string, count: number): string {
  if (count <= 1) return file;
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.${binding}${ext || ".sql"}`;
}

/** Writes each D1 database of the project to SQL before a down deletes it; throws if any export fails. */
async function exportDatabases(api: ApiClient, project: string, file: string, bindings: string[]): Promise<void> {
  if (bindings.length === 0) {
    note(`--export: ${project} has no D1 database; nothing to export`);
    return;
  }
  for (const binding of bindings) {
    const answer = await api.call("exportResource", { params: { id: project, binding } });
    const target = exportPath(file, binding, bindings.length);
    await writeFile(target, answer.sql);
    note(`exported D1 ${binding} (${answer.name}) to ${target} (${Buffer.byteLength(answer.sql)} bytes of SQL)`);
  }
}

const down: Command = {
  path: ["down"],
  synopsis: "<project> [--yes] [--export <file>] [--wait]",
  summary:
    "delete a project's Worker and its D1, KV and R2 resources (warns what is destroyed; asks y/N; --export keeps D1 as SQL)",
  options: `  --yes            do not ask (scripts); without it a non-interactive run exits 2
  --export <file>  first write the project's D1 database to <file> as SQL (several: <file>.<BINDING>.sql);
                   nothing is deleted if an export fails
${WAIT_HELP}`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...WAIT_OPTIONS,
      yes: { type: "boolean" },
      export: { type: "string" },
    });
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const timeout = intOption("timeout", values.timeout) ?? 120;
    const api = apiFrom(values);
    // Ask the API first: its 409 names the Durable Object classes whose storage would be destroyed.
    let warning: ApiError;
    try {
      const answer = await api.call("deleteProject", { params: { id: project } });
      accepted(values.json === true, "down", answer, values.wait === true);
      return values.wait ? followDeploy(api, answer.deploy_id, values.json === true, timeout) : EXIT_OK;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
      warning = error;
    }
    const details = ConfirmDetailsSchema.safeParse(warning.details);
    note(`WARNING: ${warning.message}`);
    if (details.success && details.data.do_classes.length > 0) {
      note(
        keyValues([
          ["Durable Object classes", details.data.do_classes.join(", ")],
          ["data loss", "every object of these classes and all its storage, permanently"],
        ]),
      );
    }
    const resources = details.success ? details.data.resources : [];
    if (resources.length > 0) {
      note(
        keyValues([
          ...resources.map((r): [string, string] => [RESOURCE_KINDS[r.kind], `${r.binding} (${r.name})`]),
          [
            "data loss",
            `every table, key and object in them, permanently${values.export === undefined ? " (--export <file> keeps D1 as SQL)" : ""}`,
          ],
        ]),
      );
    }
    if (!values.yes) {
      if (!interactive()) {
        note(`refusing to delete ${project} without confirmation: not a terminal; pass --yes to confirm`);
        return EXIT_USAGE;
      }
      if (!(await confirm(`Delete ${project}?`))) {
        note("aborted; nothing was deleted");
        return EXIT_FAILURE;
      }
    }
    if (values.export !== undefined) {
      const databases = resources.filter((r) => r.kind === "d1").map((r) => r.binding);
      try {
        await exportDatabases(api, project, values.export, databases);
      } catch (error) {
        note(`export failed, so nothing was deleted: ${error instanceof Error ? error.message : String(error)}`);
        return EXIT_FAILURE;
      }
    }
    const answer = await api.call("deleteProject", { params: { id: project }, query: { confirm: project } });
    accepted(values.json === true, "down", answer, values.wait === true);
    return values.wait ? followDeploy(api, answer.deploy_id, values.json === true, timeout) : EXIT_OK;
  },
};

export const DEPLOY_COMMANDS: readonly Command[] = [deploy, rollback, down];
