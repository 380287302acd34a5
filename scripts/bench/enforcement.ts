/**
 * The enforcement part of `npm run bench`: one enforcement cycle over N projects on a fresh stack.
 * Seeds D1 with N active projects that have Durable Objects and a rolling-24 h usage row each
 * (a share of them over the threshold), runs `POST /v1/admin/enforcement/run`, and reports how
 * long the workflow took. The offenders have no deployed script here, so their steps find nothing
 * to remove: the run measures finding offenders among N projects plus the per-offender step
 * overhead, which is what bounds a cycle's CPU (docs/decisions/0005-enforcement.md).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { fmt } from "../lib/report.ts";
import { ADMIN_TOKEN, type MemoryReading, captureWrangler, machine, maxMemory, startStack } from "../lib/stack.ts";
import { type BenchOptions, type CpuSummary, UNLIMITED, cpuSummary, stackEnv } from "./common.ts";

const THRESHOLD_MS = 28_800_000;
const HOUR_MS = 3_600_000;
/** The workflow acts on (and reports) at most this many offenders per cycle (workflows/enforcement.workflow.ts). */
const MAX_ENFORCED_PER_RUN = 200;

const RunSchema = z.looseObject({ status_url: z.string() });
const StatusSchema = z.looseObject({
  status: z.string(),
  output: z.looseObject({ projects: z.number(), over: z.number() }).nullable(),
  error: z.string().nullable().optional(),
});

export interface EnforcementResult {
  projects: number;
  /** Seeded over the threshold, and what the workflow found. */
  seededOver: number;
  foundOver: number | null;
  scanned: number | null;
  status: string;
  seedMs: number;
  /** Trigger → workflow complete. */
  ms: number;
  /** CPU seconds of the whole stack over the cycle (worker, D1, workflow engine). */
  cpuSeconds: number;
  cpu: CpuSummary;
  memory: MemoryReading;
  error?: string;
}

/** SQL that seeds `projects` projects, one in every `overEvery` over the threshold. */
function seedSql(projects: number, overEvery: number): string {
  // Usage three hours back: outside the two hours each run recomputes, inside the 24 h window.
  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 3 * HOUR_MS;
  const now = Date.now();
  const lines: string[] = [];
  for (let start = 0; start < projects; start += 500) {
    const ids = Array.from({ length: Math.min(500, projects - start) }, (_, i) => start + i);
    lines.push(
      `INSERT INTO projects (id, status, do_migration_tag, do_classes, do_bindings, created_at, updated_at) VALUES ${ids
        .map((i) => `('bench-${i}', 'active', 'v1', '["Counter"]', '[]', ${now}, ${now})`)
        .join(", ")};`,
      `INSERT INTO do_usage_hourly (project_id, hour, wall_ms, invocations, errors, refreshed_at) VALUES ${ids
        .map(
          (i) =>
            `('bench-${i}', ${hour}, ${i % overEvery === 0 ? THRESHOLD_MS + 1_000 + i : 1_000 + i}, 10, 0, ${now})`,
        )
        .join(", ")};`,
    );
  }
  return lines.join("\n");
}

/** Seeds, runs one cycle, and stops the stack. */
export async function runEnforcement(
  projects: number,
  overPercent: number,
  options: BenchOptions,
): Promise<EnforcementResult> {
  const overEvery = Math.max(1, Math.round(100 / overPercent));
  const seededOver = Math.ceil(projects / overEvery);
  console.log(
    `\n▶ enforcement: one cycle over ${fmt.int(projects)} projects (${fmt.int(seededOver)} over the threshold)`,
  );
  const stack = await startStack({
    name: "bench-enforcement",
    vars: { RATE_LIMITS: UNLIMITED, ...options.extraVars },
    env: stackEnv(options),
  });
  try {
    const seeding = Date.now();
    const file = path.join(mkdtempSync(path.join(tmpdir(), "shipyard-bench-")), "seed.sql");
    writeFileSync(file, seedSql(projects, overEvery));
    options.progress.update(`[enforcement] seeding ${fmt.int(projects)} projects`);
    await captureWrangler(["d1", "execute", "DB", "--local", "--persist-to", stack.stateDir, "--file", file], 300_000);
    const seedMs = Date.now() - seeding;
    options.progress.done(`[enforcement] seeded ${fmt.int(projects)} projects in ${fmt.s(seedMs)}`);

    let memory = stack.memory();
    const cpuAtStart = stack.cpu();
    const machineAtStart = machine();
    const started = Date.now();
    const run = await stack.request("POST", "/v1/admin/enforcement/run", { token: ADMIN_TOKEN, body: {} });
    const { status_url } = RunSchema.parse(run.body);
    let outcome: z.infer<typeof StatusSchema>;
    for (;;) {
      outcome = StatusSchema.parse((await stack.request("GET", status_url, { token: ADMIN_TOKEN })).body);
      memory = maxMemory(memory, stack.memory());
      if (outcome.status === "complete" || outcome.status === "errored") break;
      if (Date.now() - started > options.timeoutMs) throw stack.failure(`enforcement still ${outcome.status}`);
      options.progress.update(`[enforcement] ${fmt.s(Date.now() - started)} · ${outcome.status}`);
      await sleep(100);
    }
    const ms = Date.now() - started;
    const stackAfter = stack.cpu();
    let cpuSeconds = 0;
    for (const [thread, seconds] of stackAfter.threads) cpuSeconds += seconds - (cpuAtStart.threads.get(thread) ?? 0);
    const result: EnforcementResult = {
      projects,
      seededOver,
      foundOver: outcome.output?.over ?? null,
      scanned: outcome.output?.projects ?? null,
      status: outcome.status,
      seedMs,
      ms,
      cpuSeconds,
      cpu: cpuSummary(cpuAtStart, stackAfter, machineAtStart, machine()),
      memory,
    };
    if (outcome.status !== "complete") result.error = `workflow ${outcome.status}: ${outcome.error ?? "?"}`;
    else if (result.foundOver !== Math.min(seededOver, MAX_ENFORCED_PER_RUN))
      result.error = `found ${result.foundOver} over the threshold, seeded ${seededOver}`;
    options.progress.done(
      `[enforcement] ${outcome.status} in ${fmt.s(ms)} · ${fmt.dec(cpuSeconds, 2)} s CPU of the whole stack · found ${result.foundOver ?? "?"} over`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}
