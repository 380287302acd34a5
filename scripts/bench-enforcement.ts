/**
 * `npm run bench:enforcement`: one enforcement cycle over 10,000 projects on local workerd.
 * Seeds D1 with N active projects that have Durable Objects and a rolling-24 h usage row each
 * (1 % of them over the threshold), runs `POST /v1/admin/enforcement/run`, and reports how long
 * the workflow took and its steps. The offenders have no deployed script here, so their steps
 * find nothing to remove: the run measures finding offenders among N projects plus the per-
 * offender step overhead, which is what bounds a cycle's CPU (docs/decisions/0005-enforcement.md).
 *
 *   npm run bench:enforcement -- [--projects 10000] [--over-percent 1]
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { ADMIN_TOKEN, captureWrangler, startStack } from "./lib/stack.ts";

const { values: args } = parseArgs({
  options: { projects: { type: "string", default: "10000" }, "over-percent": { type: "string", default: "1" } },
});
const projects = Number(args.projects);
const overEvery = Math.max(1, Math.round(100 / Number(args["over-percent"])));
const THRESHOLD_MS = 28_800_000;
const HOUR_MS = 3_600_000;

const stack = await startStack({
  name: "bench-enforcement",
  vars: { RATE_LIMITS: JSON.stringify({ admin: { limit: 100_000, window_s: 60 } }) },
});
try {
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
  const file = path.join(mkdtempSync(path.join(tmpdir(), "shipyard-bench-")), "seed.sql");
  writeFileSync(file, lines.join("\n"));
  console.log(`seeding ${projects} projects (${Math.ceil(projects / overEvery)} over the threshold)`);
  await captureWrangler(["d1", "execute", "DB", "--local", "--persist-to", stack.stateDir, "--file", file], 300_000);

  const before = stack.cpu();
  const started = performance.now();
  const run = await stack.request("POST", "/v1/admin/enforcement/run", { token: ADMIN_TOKEN, body: {} });
  const { status_url } = z.object({ status_url: z.string() }).parse(run.body);
  let outcome: unknown = null;
  for (;;) {
    const status = await stack.request("GET", status_url, { token: ADMIN_TOKEN });
    const parsed = z.object({ status: z.string(), output: z.unknown() }).parse(status.body);
    if (parsed.status === "complete" || parsed.status === "errored") {
      outcome = parsed;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const elapsed = performance.now() - started;
  const after = stack.cpu();
  let cpuSeconds = 0;
  for (const [thread, seconds] of after.threads) cpuSeconds += seconds - (before.threads.get(thread) ?? 0);
  console.log(JSON.stringify(outcome));
  console.log(
    `enforcement over ${projects} projects: ${(elapsed / 1000).toFixed(2)} s wall (trigger → complete), ` +
      `${cpuSeconds.toFixed(2)} s CPU of the whole local stack (worker, D1, Durable Objects, workflow engine)`,
  );
} finally {
  await stack.stop();
}
