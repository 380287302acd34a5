/**
 * The enforcement part of the demo: hold the sample tenant's Counter Durable Object busy for a
 * while, wait until that wall time is metered (locally each invocation becomes a `do_usage`
 * telemetry event, which the enforcement run rolls up), run an enforcement cycle with a threshold
 * below what was measured, and show the Durable Object route refused with 503 while /hello keeps
 * serving; then a redeploy (v2) restores the binding and the counter continues where it was.
 */
import { z } from "zod";
import type { CallOutput } from "../../lib/api-client.ts";
import type { DeployManifest } from "../../schemas/deploy.schema.ts";
import { type Phase, fmt } from "../lib/report.ts";
import type { Stack } from "../lib/stack.ts";
import { apiCall, brief, clock, errorCode, waitFor } from "./api.ts";
import { type DemoContext, SECTION, need } from "./context.ts";
import {
  COUNTER_ROUTE,
  type DeployState,
  HELLO_ROUTE,
  TenantHelloSchema,
  callCounter,
  callHello,
  deployManifest,
} from "./deploy.ts";

export interface EnforcementOptions {
  /** How long to wait for usage to be metered, the run and the redeploy. */
  timeoutMs: number;
}

export interface EnforcementState {
  /** Metered wall time (ms) and invocations in D1 before the run. */
  wallMs?: number;
  invocations?: number;
  thresholdMs?: number;
  /** `do_enforcement_status` as observed, in order. */
  statuses: string[];
}

const ENFORCEMENT = "Enforcement";
const TRANSITIONS = "Enforcement transitions (GET /v1/admin/audit?type=enforcement.*)";
const TIMES = SECTION.times;
/** Calls of `?work=50`: ~250 ms of Durable Object wall time, plenty over a threshold of half of it. */
const WORK_CALLS = 5;
const WORK_MS = 50;
const VERSION_MODULE = "src/version.js";

const UsageRowSchema = z.object({ n: z.number(), wall: z.number().nullable() });

function state(ctx: DemoContext): EnforcementState {
  ctx.enforcement ??= { statuses: [] };
  return ctx.enforcement;
}

function deployState(ctx: DemoContext): DeployState {
  return need(ctx.deploy, "deploy state (the deploy phase)");
}

async function projectStatus(stack: Stack, projectId: string): Promise<string> {
  return (await apiCall(stack, "getProject", { params: { id: projectId } })).do_enforcement_status;
}

/**
 * The same tenant with `src/version.js` saying v2: a redeploy of changed code, same Durable
 * Objects. wrangler bundled `src/version.js` into the main module, so its constant changes there.
 */
function versionTwo(manifest: DeployManifest): DeployManifest {
  const bundled = 'var VERSION = "v1";';
  const main = manifest.modules.find((module) => module.name === manifest.main_module);
  if (!main?.content.includes(bundled)) {
    throw new Error(`the sample tenant's bundle has no ${VERSION_MODULE} constant (${bundled}) to change`);
  }
  return {
    ...manifest,
    modules: manifest.modules.map((module) =>
      module === main ? { ...module, content: module.content.replace(bundled, 'var VERSION = "v2";') } : module,
    ),
  };
}

/** "wall 612 ms > threshold 306 ms, bindings COUNTER" from an audit entry's details. */
function describeDetails(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([key, value]) => `${key} ${Array.isArray(value) ? value.join(", ") : brief(value, 60)}`)
    .join(", ");
}

export function enforcementPhases(options: EnforcementOptions): Phase<DemoContext>[] {
  return [
    {
      name: "do-usage",
      title: `Drive Durable Object wall time (${WORK_CALLS} × ${COUNTER_ROUTE}?work=${WORK_MS}) and wait until it is metered`,
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const deploy = deployState(ctx);
        const counts: number[] = [];
        for (let i = 0; i < WORK_CALLS; i++) {
          const answer = await callCounter(stack, deploy.projectId, `?work=${WORK_MS}`);
          if (answer.count !== deploy.count + 1) {
            throw new Error(`${COUNTER_ROUTE}?work=${WORK_MS} answered ${answer.status} ${brief(answer.body)}`);
          }
          deploy.count = answer.count;
          counts.push(answer.count);
        }
        console.log(`  counts ${counts.join(", ")}`);
        // Every Durable Object call so far (the tenant-traffic phase's and these) wrote at least one
        // usage point; locally each point is a `do_usage` event on its way through queue and shards.
        const calls = deploy.count;
        const started = Date.now();
        let usage = { n: 0, wall: 0 };
        await waitFor(
          stack,
          {
            timeoutMs: options.timeoutMs,
            intervalMs: 300,
            describe: () => `${usage.n} of ≥ ${calls} do_usage events in D1 (${usage.wall} ms wall time)`,
          },
          async () => {
            const row = UsageRowSchema.parse(
              (
                await stack.queryD1(
                  `SELECT COUNT(*) AS n, SUM(json_extract(data, '$.wall_ms')) AS wall FROM runtime_events
                   WHERE type = 'do_usage' AND project_id = '${deploy.projectId}'`,
                )
              )[0],
            );
            usage = { n: row.n, wall: row.wall ?? 0 };
            ctx.progress.update(
              `${usage.n}/${calls} do_usage events in D1 · ${usage.wall} ms wall time · ${fmt.s(Date.now() - started)}`,
            );
            return usage.n >= calls && usage.wall > 0 ? usage : undefined;
          },
        );
        const enforcement = state(ctx);
        enforcement.wallMs = usage.wall;
        enforcement.invocations = usage.n;
        enforcement.statuses.push(await projectStatus(stack, deploy.projectId));
        ctx.progress.done(
          `${usage.n} Durable Object invocations metered, ${fmt.int(usage.wall)} ms wall time, in D1 after ${fmt.s(Date.now() - started)}`,
        );
        ctx.report.set(
          ENFORCEMENT,
          "metered before the run (do_usage events in D1)",
          `${usage.n} invocations, ${fmt.int(usage.wall)} ms wall time`,
        );
        ctx.report.set(TIMES, "Durable Object call → usage in D1", fmt.s(Date.now() - started));
      },
    },
    {
      name: "enforce",
      title: "Run enforcement with a threshold below the measured usage",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const deploy = deployState(ctx);
        const enforcement = state(ctx);
        const wallMs = need(enforcement.wallMs, "measured wall time");
        const thresholdMs = Math.max(1, Math.floor(wallMs / 2));
        enforcement.thresholdMs = thresholdMs;
        const started = Date.now();
        stack.mark("demo: enforcement run");
        const run = await apiCall(stack, "runEnforcement", { body: { threshold_ms: thresholdMs } });
        console.log(`  POST /v1/admin/enforcement/run {"threshold_ms": ${thresholdMs}} → run ${run.run_id}`);
        let status: CallOutput<"getEnforcementRun"> | undefined;
        const final = await waitFor(
          stack,
          {
            timeoutMs: options.timeoutMs,
            intervalMs: 400,
            describe: () => `run ${run.run_id} is ${status?.status ?? "?"}`,
          },
          async () => {
            const latest = await apiCall(stack, "getEnforcementRun", { params: { id: run.run_id } });
            status = latest;
            ctx.progress.update(`enforcement run ${latest.status} · ${fmt.s(Date.now() - started)}`);
            return ["complete", "errored", "terminated"].includes(latest.status) ? latest : undefined;
          },
        );
        const ms = Date.now() - started;
        ctx.progress.done(
          `run ${final.status} in ${fmt.s(ms)}: ${final.output?.projects ?? "?"} projects with Durable Objects, ${final.output?.over ?? "?"} over ${thresholdMs} ms, enforced [${final.output?.enforced.join(", ") ?? ""}]`,
        );
        if (final.status !== "complete")
          throw new Error(`enforcement run ${final.status}: ${final.error ?? "no error"}`);

        const usage = await apiCall(stack, "getDoUsage", { params: { id: deploy.projectId } });
        const project = await projectStatus(stack, deploy.projectId);
        enforcement.statuses.push(project);
        const counter = await callCounter(stack, deploy.projectId);
        const hello = await callHello(stack, deploy.projectId);
        console.log(
          `  do-usage: ${fmt.int(usage.wall_ms)} ms in ${usage.invocations} invocations, status ${usage.do_enforcement_status}, removed [${usage.removed_bindings.map((b) => `${b.name} → ${b.class_name}`).join(", ")}]`,
        );
        console.log(`  GET ${COUNTER_ROUTE} → ${counter.status} ${errorCode(counter.body) ?? brief(counter.body, 80)}`);
        console.log(`  GET ${HELLO_ROUTE} → ${hello.status}`);

        ctx.report.set(ENFORCEMENT, "threshold for the run (half the measured usage)", `${fmt.int(thresholdMs)} ms`);
        ctx.report.set(
          ENFORCEMENT,
          "run",
          `${final.status} in ${fmt.s(ms)}; enforced [${final.output?.enforced.join(", ") ?? ""}]`,
        );
        ctx.report.set(
          ENFORCEMENT,
          "GET /v1/projects/:id/do-usage",
          `${fmt.int(usage.wall_ms)} ms in ${usage.invocations} invocations, ${usage.do_enforcement_status}, removed ${usage.removed_bindings.map((b) => b.name).join(", ") || "none"}`,
        );
        ctx.report.set(
          ENFORCEMENT,
          `while enforced: ${COUNTER_ROUTE}`,
          `${counter.status} ${errorCode(counter.body) ?? ""}`,
        );
        ctx.report.set(ENFORCEMENT, `while enforced: ${HELLO_ROUTE}`, hello.status);
        ctx.report.set(TIMES, "enforcement run (POST → complete)", fmt.s(ms));
        ctx.report.check(
          "enforcement: the run enforced the project",
          final.output?.enforced.includes(deploy.projectId) === true,
          `enforced [${final.output?.enforced.join(", ") ?? ""}] with threshold ${thresholdMs} ms`,
        );
        ctx.report.check(
          "enforcement: usage shows the metered wall time",
          usage.wall_ms > 0 && usage.wall_ms >= thresholdMs,
          `do-usage wall_ms ${usage.wall_ms} (measured ${wallMs} before the run), threshold ${thresholdMs}`,
        );
        ctx.report.check(
          "enforcement: Durable Object route answers 503 do_binding_removed",
          counter.status === 503 && errorCode(counter.body) === "do_binding_removed",
          `${counter.status} ${brief(counter.body, 140)}`,
        );
        ctx.report.check(
          "enforcement: /hello keeps answering 200",
          hello.status === 200 && TenantHelloSchema.safeParse(hello.body).success,
          `${hello.status} ${brief(hello.body, 100)}`,
        );
        ctx.report.check(
          "enforcement: project status enforced",
          project === "enforced" && usage.do_enforcement_status === "enforced",
          `GET /v1/projects/${deploy.projectId} → do_enforcement_status ${project}`,
        );
      },
    },
    {
      name: "redeploy",
      title: "Redeploy (v2) restores the Durable Object binding",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const deploy = deployState(ctx);
        const enforcement = state(ctx);
        const before = deploy.count;
        const run = await deployManifest(ctx, versionTwo(deploy.manifest), "v2", options.timeoutMs);
        deploy.deploys.push(run);
        const counter = await callCounter(stack, deploy.projectId);
        const hello = await callHello(stack, deploy.projectId);
        const helloVersion = TenantHelloSchema.safeParse(hello.body);
        const project = await projectStatus(stack, deploy.projectId);
        enforcement.statuses.push(project);
        if (counter.count !== undefined) deploy.count = counter.count;
        console.log(
          `  GET ${COUNTER_ROUTE} → ${counter.status} count ${counter.count ?? "?"} (was ${before}), version ${counter.version ?? "?"}; status ${project}`,
        );
        ctx.report.set(ENFORCEMENT, "deploy v2", `${run.deployId} · ${run.status.status} · ${fmt.s(run.ms)}`);
        ctx.report.set(
          ENFORCEMENT,
          `after v2: ${COUNTER_ROUTE}`,
          `${counter.status}, count ${before} → ${counter.count ?? "?"}, version ${counter.version ?? "?"}`,
        );
        ctx.report.set(
          ENFORCEMENT,
          `after v2: ${HELLO_ROUTE}`,
          `${hello.status}, version ${helloVersion.success ? helloVersion.data.version : "?"}`,
        );
        ctx.report.set(ENFORCEMENT, "do_enforcement_status, as observed", enforcement.statuses.join(" → "));
        ctx.report.check(
          "redeploy: the counter continues where it was",
          counter.status === 200 && counter.count === before + 1 && counter.version === "v2",
          `${counter.status}: count ${counter.count ?? "?"} after ${before}, version ${counter.version ?? "?"}`,
        );
        ctx.report.check(
          "redeploy: enforcement cleared",
          project === "none",
          `do_enforcement_status ${enforcement.statuses.join(" → ")}`,
        );

        const audit = await apiCall(stack, "listAudit", {
          query: { type: "enforcement.*", project_id: deploy.projectId },
        });
        for (const [index, entry] of audit.entries.entries()) {
          ctx.report.set(
            TRANSITIONS,
            `${index + 1}. ${clock(entry.at)} ${entry.type}`,
            `${entry.actor}: ${describeDetails(entry.details)}`,
          );
          console.log(`  audit ${clock(entry.at)} ${entry.type} (${entry.actor}) ${describeDetails(entry.details)}`);
        }
        const types = audit.entries.map((entry) => entry.type);
        ctx.report.check(
          "enforcement transitions audited",
          types.indexOf("enforcement.applied") !== -1 &&
            types.lastIndexOf("enforcement.cleared") > types.indexOf("enforcement.applied"),
          types.join(" → ") || "no enforcement.* audit entries",
        );
      },
    },
  ];
}
