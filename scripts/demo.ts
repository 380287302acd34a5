/**
 * `npm run demo`: boots a fresh local stack, sends a realistic burst of telemetry (repeated ids
 * included) from several concurrent clients, waits until every unique id is in D1, and reports
 * what it took. Writes the report to demo-report.md. Exits 0 only if every invariant held.
 *
 *   npm run demo -- [--events 20000] [--repeat-rate 0.2] [--clients 4] [--seed 42] [--timeout 180]
 *
 * The run is a sequence of named phases sharing one context and one report (scripts/demo/,
 * scripts/lib/report.ts). A later feature (counters, deploys, enforcement, dead letters) adds a
 * module under scripts/demo/ exporting its phases and lists them in `PHASES` below.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { Progress, Report, fmt, runPhases } from "./lib/report.ts";
import { ROOT } from "./lib/wrangler.ts";
import { type DemoContext, SECTION } from "./demo/context.ts";
import { bootPhase, teardownPhase } from "./demo/lifecycle.ts";
import { telemetryPhases } from "./demo/telemetry.ts";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "20000" },
    "repeat-rate": { type: "string", default: "0.2" },
    clients: { type: "string", default: "4" },
    seed: { type: "string", default: "42" },
    timeout: { type: "string", default: "180" },
  },
});

const telemetry = {
  events: Number(args.events),
  repeatRate: Number(args["repeat-rate"]),
  clients: Number(args.clients),
  seed: Number(args.seed),
  timeoutMs: Number(args.timeout) * 1000,
};

const PHASES = [bootPhase, ...telemetryPhases(telemetry), teardownPhase];

const ctx: DemoContext = { report: new Report("Shipyard demo"), progress: new Progress(), at: {} };
const started = Date.now();
await runPhases(PHASES, ctx);
ctx.report.set(SECTION.times, "whole run", fmt.s(Date.now() - started));
ctx.report.note(
  `Command: \`npm run demo -- --events ${telemetry.events} --repeat-rate ${telemetry.repeatRate} --clients ${telemetry.clients} --seed ${telemetry.seed}\``,
);
ctx.report.note(
  "“per 1,000 events” divides by events sent (repeats included); counters are since the worker started, so they include nothing else.",
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
  process.exit(1);
}
console.log("\nDEMO PASSED");
