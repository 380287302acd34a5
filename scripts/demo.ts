/**
 * `npm run demo`: boots a fresh local stack and plays a scripted day: a realistic burst of
 * telemetry (repeated ids included) from several concurrent clients, checked row by row in D1;
 * counter increments with repeats, every total checked against what was sent; the sample tenant
 * deployed through the signed webhook and its traffic; a tenant with D1 migrations, KV and R2 (read
 * back, kept across a redeploy, exported and deleted by down); an enforcement cycle with a lowered
 * threshold and the redeploy that restores; poison messages, dead-lettered and redriven. Reports
 * what it took to the terminal and demo-report.md. Exits 0 only if every invariant held.
 *
 *   npm run demo -- [--events 50000] [--increments 20000] [--repeat-rate 0.2] [--clients 4] [--seed 42] [--timeout 180] [--serve]
 *
 * It ends by printing the on-call console's URL; with `--serve` the stack keeps serving (console and
 * API) until Ctrl-C.
 *
 * The run is a sequence of named phases sharing one context and one report (scripts/demo/,
 * scripts/lib/report.ts). A later feature (counters, deploys, enforcement, dead letters) adds a
 * module under scripts/demo/ exporting its phases and lists them in `PHASES` below.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { Progress, Report, fmt, runPhases } from "./lib/report.ts";
import { ADMIN_TOKEN } from "./lib/stack.ts";
import { ROOT } from "./lib/wrangler.ts";
import { type DemoContext, SECTION } from "./demo/context.ts";
import { countersPhases } from "./demo/counters.ts";
import { deadLettersPhases } from "./demo/deadletters.ts";
import { deployPhases } from "./demo/deploy.ts";
import { tsTenantPhases } from "./demo/ts-tenant.ts";
import { storagePhases } from "./demo/storage.ts";
import { enforcementPhases } from "./demo/enforcement.ts";
import { realtimePhase } from "./demo/realtime.ts";
import { bootPhase, teardownPhase } from "./demo/lifecycle.ts";
import { telemetryPhases } from "./demo/telemetry.ts";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    increments: { type: "string", default: "20000" },
    "repeat-rate": { type: "string", default: "0.2" },
    clients: { type: "string", default: "4" },
    seed: { type: "string", default: "42" },
    timeout: { type: "string", default: "180" },
    /** Keep the stack serving after the run (the console, the API) until Ctrl-C. */
    serve: { type: "boolean", default: false },
  },
});

const telemetry = {
  events: Number(args.events),
  repeatRate: Number(args["repeat-rate"]),
  clients: Number(args.clients),
  seed: Number(args.seed),
  timeoutMs: Number(args.timeout) * 1000,
};

const counters = {
  increments: Number(args.increments),
  repeatRate: telemetry.repeatRate,
  clients: telemetry.clients,
  seed: telemetry.seed,
  timeoutMs: telemetry.timeoutMs,
};

// Telemetry first: its check wants exactly its own ids in runtime_events, and the later phases
// add rows there (the tenant's Durable Object usage, the redriven envelope).
const PHASES = [
  bootPhase,
  ...telemetryPhases(telemetry),
  ...countersPhases(counters),
  ...deployPhases({ timeoutMs: telemetry.timeoutMs }),
  ...tsTenantPhases({ timeoutMs: telemetry.timeoutMs }),
  ...storagePhases({ timeoutMs: telemetry.timeoutMs }),
  ...enforcementPhases({ timeoutMs: telemetry.timeoutMs }),
  // After enforcement, whose lowered threshold would otherwise also catch this tenant's usage.
  realtimePhase({ timeoutMs: telemetry.timeoutMs }),
  ...deadLettersPhases({ seed: telemetry.seed, timeoutMs: telemetry.timeoutMs }),
  // With --serve the stack stays up after the report; Ctrl-C stops it (scripts/lib/stack.ts).
  ...(args.serve ? [] : [teardownPhase]),
];

const ctx: DemoContext = { report: new Report("Shipyard demo"), progress: new Progress(), at: {} };
const started = Date.now();
await runPhases(PHASES, ctx);
ctx.report.set(SECTION.times, "whole run", fmt.s(Date.now() - started));
ctx.report.note(
  `Command: \`npm run demo -- --events ${telemetry.events} --increments ${counters.increments} --repeat-rate ${telemetry.repeatRate} --clients ${telemetry.clients} --seed ${telemetry.seed}\``,
);
ctx.report.note(
  "“per 1,000 events” / “per 1,000 increments” divide by what was sent (repeats included); /v1/admin/metrics counts since the worker started, and the telemetry figures are read before later phases add events.",
);
ctx.report.print();
const reportFile = path.join(ROOT, "demo-report.md");
ctx.report.write(reportFile);
console.log(`\nreport written to ${path.relative(process.cwd(), reportFile) || reportFile}`);
if (!ctx.report.ok) {
  const reasons = [
    ...ctx.report.failedPhases.map((phase) => `phase "${phase.name}" failed: ${phase.error?.split("\n")[0]}`),
    ...ctx.report.failedChecks.map((check) => `invariant "${check.name}" failed: ${check.detail}`),
  ];
  console.error(`\nDEMO FAILED\n  ${reasons.join("\n  ")}`);
  if (ctx.stack) console.error(`  wrangler log: ${ctx.stack.logPath}`);
} else {
  console.log("\nDEMO PASSED");
}

// The run ends with the on-call console's address: open it on the data the demo just made.
const consoleUrl = ctx.stack ? `${ctx.stack.url}/console` : null;
if (args.serve && consoleUrl) {
  console.log(`\nOn-call console: ${consoleUrl} (sign in with ${ADMIN_TOKEN}); serving until Ctrl-C`);
  // An interval keeps Node running; Ctrl-C stops the stack and exits (scripts/lib/stack.ts).
  setInterval(() => undefined, 60_000);
} else {
  console.log(
    consoleUrl
      ? `\nOn-call console: ${consoleUrl} (stopped now; \`npm run demo -- --serve\` keeps it serving)`
      : "\nOn-call console: not started (the stack did not boot)",
  );
  process.exit(ctx.report.ok ? 0 : 1);
}
