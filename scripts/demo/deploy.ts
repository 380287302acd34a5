/**
 * The deploy part of the demo: build the sample tenant's manifest with the CLI's own code (the
 * same bytes `shipyard deploy` would send), sign it like a CI system (Standard Webhooks), post it,
 * follow the DeployWorkflow step by step, then drive the tenant's traffic: a route that needs no
 * Durable Object, and the Counter Durable Object, whose count must go up by one per call.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { DEFAULT_WEBHOOK_SECRET, readManifest, signWebhook } from "../../cli/manifest.ts";
import { DeployAcceptedSchema, type DeployManifest, type DeployStatus } from "../../schemas/deploy.schema.ts";
import { type Phase, fmt } from "../lib/report.ts";
import type { Stack } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";
import { apiCall, brief, call, waitFor } from "./api.ts";
import { type DemoContext, SECTION, need } from "./context.ts";

export interface DeployOptions {
  /** How long a deploy may take to complete. */
  timeoutMs: number;
}

/** One deploy the demo made: what the webhook answered and how the workflow went. */
export interface DeployRun {
  label: string;
  deployId: string;
  status: DeployStatus;
  /** Webhook POST → status complete (or errored). */
  ms: number;
}

export interface DeployState {
  projectId: string;
  manifest: DeployManifest;
  deploys: DeployRun[];
  /** The Counter Durable Object's count after the latest call (the next call must answer this + 1). */
  count: number;
}

export const TENANT_DIR = path.join(ROOT, "examples", "sample-tenant");
/** The tenant's Durable Object route, and the one that needs no Durable Object. */
export const COUNTER_ROUTE = "/counter/main";
export const HELLO_ROUTE = "/hello";

const DEPLOY = "Deploy";
const TRAFFIC = "Tenant traffic";
const TIMES = SECTION.times;

export const TenantCountSchema = z.looseObject({ count: z.number().int(), version: z.string() });
export const TenantHelloSchema = z.looseObject({ message: z.string(), version: z.string() });

function state(ctx: DemoContext): DeployState {
  return need(ctx.deploy, "deploy state");
}

/** `12 ms` / `1.2 s` for a step that has both timestamps. */
function stepTook(step: DeployStatus["steps"][number]): string {
  if (step.started_at === null || step.finished_at === null) return "–";
  const ms = step.finished_at - step.started_at;
  return ms < 1000 ? `${ms} ms` : fmt.s(ms);
}

function stepLine(step: DeployStatus["steps"][number]): string {
  return `${step.state} · ${step.attempts} attempt${step.attempts === 1 ? "" : "s"} · ${stepTook(step)}${step.error ? ` · ${step.error}` : ""}`;
}

/**
 * Each project's own deploy secret, from the answer to its first deploy: later deploys of the
 * project (v2, the redeploy after enforcement) must be signed with it, as a CI system would.
 */
const deploySecrets = new Map<string, string>();

/**
 * `POST /v1/deploys`, signed over the exact bytes sent with `secret`. Not `Stack.request`: the webhook takes
 * no bearer token but three signature headers. A 429 (60 a minute per client IP) is waited out.
 */
async function postWebhook(
  stack: Stack,
  body: string,
  webhookId: string,
  signer: { secret: string; keyId: string | null },
): Promise<{ status: number; body: unknown; ms: number }> {
  for (let attempt = 1; ; attempt++) {
    const timestamp = Math.floor(Date.now() / 1000);
    const started = performance.now();
    const response = await fetch(`${stack.url}/v1/deploys`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": webhookId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(signer.secret, webhookId, timestamp, body),
        ...(signer.keyId === null ? {} : { "shipyard-key-id": signer.keyId }),
      },
      body,
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // Keep the text for the error message.
    }
    if (response.status !== 429 || attempt >= 6) {
      return { status: response.status, body: parsed, ms: performance.now() - started };
    }
    await sleep(Math.max(1, Number(response.headers.get("retry-after")) || 1) * 1000);
  }
}

/**
 * Deploys `manifest` through the signed webhook and follows `GET /v1/deploys/:id` until the
 * workflow completes, printing each step once it finished and writing them into the report
 * (section "Deploy steps (<label>)"). Posts the same delivery twice: the second answer must
 * repeat the first deploy id (Standard Webhooks senders retry deliveries).
 */
export async function deployManifest(
  ctx: DemoContext,
  manifest: DeployManifest,
  label: string,
  timeoutMs: number,
): Promise<DeployRun> {
  const stack = need(ctx.stack, "stack");
  const body = JSON.stringify(manifest);
  const webhookId = `msg_demo_${randomUUID()}`;
  const started = Date.now();
  stack.mark(`demo: deploy ${label}`);
  // The project's own secret once its first deploy returned one; the shared secret creates it.
  const own = deploySecrets.get(manifest.project_id);
  const signer =
    own === undefined ? { secret: DEFAULT_WEBHOOK_SECRET, keyId: null } : { secret: own, keyId: manifest.project_id };
  const answer = await postWebhook(stack, body, webhookId, signer);
  if (answer.status !== 202) throw new Error(`POST /v1/deploys answered ${answer.status}: ${brief(answer.body)}`);
  const accepted = DeployAcceptedSchema.parse(answer.body);
  console.log(`  webhook ${webhookId} → 202 in ${fmt.int(answer.ms)} ms, deploy ${accepted.deploy_id}`);
  if (own === undefined) {
    ctx.report.check(
      `deploy ${label}: the project's first deploy returns its own deploy secret`,
      accepted.deploy_secret?.startsWith("whsec_") === true,
      accepted.deploy_secret === undefined
        ? "no deploy_secret in the answer"
        : "deploy_secret whsec_… (kept for later deploys)",
    );
    if (accepted.deploy_secret !== undefined) deploySecrets.set(manifest.project_id, accepted.deploy_secret);
  }

  // The retry is the same delivery: signed as the first attempt was.
  const again = await postWebhook(stack, body, webhookId, signer);
  const repeated = again.status === 202 ? DeployAcceptedSchema.safeParse(again.body) : null;
  ctx.report.check(
    `deploy ${label}: a repeated delivery starts no second deploy`,
    repeated?.success === true &&
      repeated.data.deploy_id === accepted.deploy_id &&
      repeated.data.deploy_secret === accepted.deploy_secret,
    `same webhook-id again → ${again.status} ${repeated?.success ? `deploy ${repeated.data.deploy_id}` : brief(again.body, 120)}`,
  );
  if (own !== undefined) {
    // Per-project authorisation: the shared secret only creates projects.
    const shared = await postWebhook(stack, body, `msg_demo_${randomUUID()}`, {
      secret: DEFAULT_WEBHOOK_SECRET,
      keyId: null,
    });
    ctx.report.check(
      `deploy ${label}: a redeploy signed with the shared webhook secret is refused`,
      shared.status === 401,
      `shared secret → ${shared.status}`,
    );
  }

  const printed = new Set<string>();
  let status: DeployStatus | undefined;
  const final = await waitFor(
    stack,
    {
      timeoutMs,
      intervalMs: 400,
      describe: () =>
        `deploy ${accepted.deploy_id} still ${status?.status ?? "unknown"} (${status?.steps.map((step) => `${step.name}: ${step.state}`).join(", ") ?? "no steps"})`,
    },
    async () => {
      status = await apiCall(stack, "getDeploy", { params: { id: accepted.deploy_id } });
      for (const step of status.steps) {
        if (step.state !== "running" && !printed.has(step.name)) {
          printed.add(step.name);
          ctx.progress.done(`${step.state === "complete" ? "✓" : "✗"} ${step.name.padEnd(26)} ${stepLine(step)}`);
        }
      }
      const running = status.steps.find((step) => step.state === "running");
      ctx.progress.update(
        `deploy ${label}: ${status.status}${running ? ` · ${running.name} (attempt ${running.attempts})` : ""} · ${fmt.s(Date.now() - started)}`,
      );
      return status.status === "complete" || status.status === "errored" ? status : undefined;
    },
  );
  const ms = Date.now() - started;
  const run: DeployRun = { label, deployId: accepted.deploy_id, status: final, ms };
  ctx.progress.done(
    `deploy ${label} ${final.status} in ${fmt.s(ms)}${final.version_id ? ` (version ${final.version_id})` : ""}`,
  );
  const section = `Deploy steps (${label}: state · attempts · duration)`;
  for (const step of final.steps) ctx.report.set(section, step.name, stepLine(step));
  // Where the time went: the deploy waits in the queue (batches up to 1 s) and for the workflow
  // to start before its first step; the steps themselves are quick locally.
  const firstStart = final.steps[0]?.started_at ?? null;
  const lastFinish = final.steps.at(-1)?.finished_at ?? null;
  if (firstStart !== null)
    ctx.report.set(section, "recorded → first step (queue, workflow start)", fmt.s(firstStart - final.created_at));
  if (firstStart !== null && lastFinish !== null)
    ctx.report.set(section, "first step → last step done", fmt.s(lastFinish - firstStart));
  ctx.report.set(section, "webhook POST → complete (as polled)", fmt.s(ms));
  ctx.report.set(TIMES, `deploy ${label} (webhook → complete)`, fmt.s(ms));
  ctx.report.check(
    `deploy ${label}: workflow complete`,
    final.status === "complete",
    `${final.status} after ${final.steps.length} steps in ${fmt.s(ms)}${final.error ? `: ${final.error}` : ""}`,
  );
  if (final.status !== "complete") throw new Error(`deploy ${label} ${final.status}: ${final.error ?? "no error"}`);
  return run;
}

/** One call of the tenant's Durable Object route: its status and, on 200, the count. */
export async function callCounter(
  stack: Stack,
  projectId: string,
  query = "",
): Promise<{ status: number; body: unknown; count?: number; version?: string }> {
  const answer = await call(stack, "GET", `/t/${projectId}${COUNTER_ROUTE}${query}`);
  const parsed = answer.status === 200 ? TenantCountSchema.safeParse(answer.body) : undefined;
  if (answer.status === 200 && !parsed?.success) {
    throw new Error(`${COUNTER_ROUTE} answered 200 without a count: ${brief(answer.body)}`);
  }
  return parsed?.success
    ? { status: answer.status, body: answer.body, count: parsed.data.count, version: parsed.data.version }
    : { status: answer.status, body: answer.body };
}

/** `/hello`: the route that needs no Durable Object. */
export async function callHello(stack: Stack, projectId: string): Promise<{ status: number; body: unknown }> {
  const answer = await call(stack, "GET", `/t/${projectId}${HELLO_ROUTE}`);
  return { status: answer.status, body: answer.body };
}

export function deployPhases(options: DeployOptions): Phase<DemoContext>[] {
  return [
    {
      name: "deploy",
      title: "Deploy the sample tenant through the signed webhook",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const manifest = await readManifest(TENANT_DIR);
        ctx.deploy = { projectId: manifest.project_id, manifest, deploys: [], count: 0 };
        console.log(
          `  ${path.relative(ROOT, TENANT_DIR)}: project ${manifest.project_id}, ${manifest.modules.length} modules (${manifest.modules.map((module) => module.name).join(", ")}), Durable Object classes ${manifest.config.durable_objects?.bindings.map((binding) => binding.class_name).join(", ") ?? "none"}`,
        );
        ctx.report.set(DEPLOY, "project", manifest.project_id);
        ctx.report.set(DEPLOY, "modules sent", manifest.modules.map((module) => module.name).join(", "));
        const run = await deployManifest(ctx, manifest, "v1", options.timeoutMs);
        state(ctx).deploys.push(run);
        const project = await apiCall(stack, "getProject", { params: { id: manifest.project_id } });
        ctx.report.set(DEPLOY, "deploy v1", `${run.deployId} · ${run.status.status} · ${fmt.s(run.ms)}`);
        ctx.report.set(DEPLOY, "migration (v1)", brief(run.status.migration, 160));
        ctx.report.set(
          DEPLOY,
          "project after v1",
          `Durable Objects ${project.do_classes.join(", ") || "none"}, tag ${project.do_migration_tag ?? "none"}, enforcement ${project.do_enforcement_status}`,
        );
        ctx.report.check(
          "deploy v1: project has its Durable Object class",
          project.has_durable_objects && project.do_classes.includes("Counter") && project.status === "active",
          `status ${project.status}, classes [${project.do_classes.join(", ")}], tag ${project.do_migration_tag ?? "none"}`,
        );
      },
    },
    {
      name: "tenant-traffic",
      title: "Tenant traffic: /hello and the Counter Durable Object",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const deploy = state(ctx);
        const hello = await callHello(stack, deploy.projectId);
        const greeting = TenantHelloSchema.safeParse(hello.body);
        console.log(`  GET /t/${deploy.projectId}${HELLO_ROUTE} → ${hello.status} ${brief(hello.body, 120)}`);
        ctx.report.set(
          TRAFFIC,
          `GET /t/${deploy.projectId}${HELLO_ROUTE}`,
          `${hello.status} ${brief(hello.body, 100)}`,
        );
        ctx.report.check(
          "tenant: /hello answers 200",
          hello.status === 200 && greeting.success,
          `${hello.status} ${brief(hello.body, 120)}`,
        );
        const counts: number[] = [];
        const problems: string[] = [];
        for (let i = 0; i < 5; i++) {
          const answer = await callCounter(stack, deploy.projectId);
          if (answer.count === undefined) {
            problems.push(`call ${i + 1}: ${answer.status} ${brief(answer.body, 120)}`);
            continue;
          }
          // A fresh stack: the Durable Object starts at 0, so the calls must count 1, 2, 3, …
          if (answer.count !== deploy.count + 1) problems.push(`call ${i + 1}: ${answer.count} after ${deploy.count}`);
          deploy.count = answer.count;
          counts.push(answer.count);
        }
        console.log(`  GET /t/${deploy.projectId}${COUNTER_ROUTE} ×5 → counts ${counts.join(", ")}`);
        ctx.report.set(TRAFFIC, `GET /t/${deploy.projectId}${COUNTER_ROUTE} ×5`, `counts ${counts.join(", ")}`);
        ctx.report.check(
          "tenant: Counter goes up by one per call",
          problems.length === 0 && counts.length === 5 && counts[0] === 1,
          problems.length === 0 ? `counts ${counts.join(", ")}` : problems.join("; "),
        );
      },
    },
  ];
}
