/**
 * `npm run bench`: every benchmark of issue 7 in one run on local workerd, each arm on a fresh
 * `wrangler dev` stack, then one report (bench/results.md) and one chart (bench/results.svg).
 *
 *   telemetry    A off      RUNTIME_EVENT_DO_MODE=off      one D1 INSERT per event (the baseline)
 *                B batch    RUNTIME_EVENT_DO_MODE=batch    one db.batch per queue batch, no Durable Objects
 *                C primary  RUNTIME_EVENT_DO_MODE=primary  32 hash shards dedupe, buffer and flush batches
 *   sweep        primary at SHARD_COUNT 1, 8, 32, 64
 *   counters     COUNTER_DO_MODE off vs primary
 *   enforcement  one enforcement cycle over 10,000 seeded projects
 *   small        small requests: POST /v1/events with 1 event against GET /v1/health, same stack,
 *                32 clients, alternating phases; both requests/s and the ratio (floor 0.7×)
 *
 * Per telemetry arm: events/s end to end and at ingress, ingest-to-visible latency per event
 * (p50/p95/p99), D1 statements and round trips and Durable Object requests per 1,000 events, peak
 * memory of workerd, CPU. The headline is the ratios C/A, C/B, B/A. Parts: scripts/bench/.
 *
 *   npm run bench -- [--only telemetry,sweep,counters,enforcement,small] [--arms off,batch,primary]
 *                    [--n-off 20000] [--n-batch 400000] [--n-primary 400000] [--n-shadow 20000]
 *                    [--counts 1,8,32,64] [--n-sweep 200000]
 *                    [--n-counters-off 5000] [--n-counters-primary 100000] [--counters 1000]
 *                    [--projects 10000] [--over-percent 1]
 *                    [--small-clients 32] [--small-seconds 10] [--small-rounds 3]
 *                    [--clients 4] [--timeout 300] [--var NAME:value ...] [--profile] [--local-observability]
 *                    [--out bench/results.md]
 *
 *   --only                 run only these parts (the report then goes to bench/out/results-<parts>.md
 *                          unless --out says otherwise, so a partial run never replaces bench/results.md)
 *   --var                  extra `wrangler dev --var` for every stack, e.g. --var FLUSH_DELAY_MS:1000
 *                          (it wins over the arms' SHARD_COUNT: use --only telemetry with it)
 *   --profile              CPU-profile the worker isolate over each telemetry arm (bench/out/*.cpuprofile)
 *   --local-observability  keep wrangler's local trace collection on (off by default: scripts/bench/common.ts)
 *
 * Writes the report, the chart next to it (same name, .svg), and bench/out/<timestamp>.json (raw
 * timelines: D1 rows per poll, shard buffers, queue batches; gitignored). Exits 1 if a part
 * failed, arm C is below the floors of issue 2, or small requests below the floor of issue 15.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { renderChart } from "./bench/chart.ts";
import { type BenchOptions, versions } from "./bench/common.ts";
import { type CountersResult, runCountersArm } from "./bench/counters.ts";
import { type EnforcementResult, runEnforcement } from "./bench/enforcement.ts";
import { type BenchResults, floors, headline, renderMarkdown } from "./bench/report.ts";
import { type SmallResult, runSmall } from "./bench/small.ts";
import { POLL_MS, type TelemetryArm, type TelemetryResult, runTelemetryArm } from "./bench/telemetry.ts";
import { Progress, fmt } from "./lib/report.ts";
import { ROOT } from "./lib/wrangler.ts";

const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    arms: { type: "string", default: "off,batch,primary" },
    "n-off": { type: "string", default: "20000" },
    "n-batch": { type: "string", default: "400000" },
    "n-primary": { type: "string", default: "400000" },
    "n-shadow": { type: "string", default: "20000" },
    counts: { type: "string", default: "1,8,32,64" },
    "n-sweep": { type: "string", default: "200000" },
    "n-counters-off": { type: "string", default: "5000" },
    "n-counters-primary": { type: "string", default: "100000" },
    counters: { type: "string", default: "1000" },
    projects: { type: "string", default: "10000" },
    "over-percent": { type: "string", default: "1" },
    "small-clients": { type: "string", default: "32" },
    "small-seconds": { type: "string", default: "10" },
    "small-rounds": { type: "string", default: "3" },
    clients: { type: "string", default: "4" },
    timeout: { type: "string", default: "300" },
    out: { type: "string" },
    "local-observability": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    var: { type: "string", multiple: true, default: [] },
  },
});

const PartSchema = z.enum(["telemetry", "sweep", "counters", "enforcement", "small"]);
const ModeSchema = z.enum(["off", "batch", "primary", "shadow"]);
const list = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
const count = (name: string, text: string | undefined) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} expects a positive integer, got "${text}"`);
  return value;
};

const PARTS = new Set(args.only ? list(args.only).map((part) => PartSchema.parse(part)) : PartSchema.options);
const N: Record<z.infer<typeof ModeSchema>, number> = {
  off: count("n-off", args["n-off"]),
  batch: count("n-batch", args["n-batch"]),
  primary: count("n-primary", args["n-primary"]),
  shadow: count("n-shadow", args["n-shadow"]),
};
const ARMS: TelemetryArm[] = list(args.arms).map((name) => {
  const mode = ModeSchema.parse(name);
  // Arm C is the design as configured by default, 32 shards (`--var SHARD_COUNT:n` tries another).
  return { name: mode, mode, events: N[mode], vars: { SHARD_COUNT: "32" } };
});
const SWEEP: TelemetryArm[] = list(args.counts).map((text) => {
  const shards = count("counts", text);
  return {
    name: `shards-${shards}`,
    mode: "primary",
    events: count("n-sweep", args["n-sweep"]),
    vars: { SHARD_COUNT: String(shards) },
  };
});

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const options: BenchOptions = {
  clients: count("clients", args.clients),
  timeoutMs: count("timeout", args.timeout) * 1000,
  localObservability: args["local-observability"] ?? false,
  profile: args.profile ?? false,
  extraVars: Object.fromEntries(
    (args.var ?? []).map((pair) => {
      const colon = pair.indexOf(":");
      if (colon <= 0) throw new Error(`--var expects NAME:value, got "${pair}"`);
      return [pair.slice(0, colon), pair.slice(colon + 1)];
    }),
  ),
  progress: new Progress(),
  stamp,
};

const complete = PARTS.size === PartSchema.options.length;
const outFile = path.resolve(
  ROOT,
  args.out ?? (complete ? "bench/results.md" : `bench/out/results-${[...PARTS].join("-")}.md`),
);
const started = Date.now();
const results: BenchResults = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  date: new Date(),
  wallMs: 0,
  clients: options.clients,
  localObservability: options.localObservability,
  pollMs: POLL_MS,
  versions: versions(),
  arms: [],
  sweep: [],
  counters: [],
  enforcement: null,
  small: null,
  failures: [],
  chart: null,
};

/** Runs one arm; a failure is recorded and the run goes on with the next arm on a fresh stack. */
async function attempt<T>(what: string, run: () => Promise<T>): Promise<T | null> {
  try {
    return await run();
  } catch (error) {
    options.progress.clear();
    const message = error instanceof Error ? error.message : String(error);
    results.failures.push(`${what}: ${message}`);
    console.error(`\n✖ ${what}: ${message}`);
    return null;
  }
}

const plan = [
  PARTS.has("telemetry") ? `telemetry ${ARMS.map((a) => `${a.name} ${fmt.int(a.events)}`).join(", ")}` : null,
  PARTS.has("sweep")
    ? `sweep ${SWEEP.map((a) => a.vars.SHARD_COUNT).join("/")} shards × ${fmt.int(SWEEP[0]?.events ?? 0)}`
    : null,
  PARTS.has("counters") ? `counters off ${args["n-counters-off"]}, primary ${args["n-counters-primary"]}` : null,
  PARTS.has("enforcement") ? `enforcement over ${args.projects} projects` : null,
  PARTS.has("small")
    ? `small requests ${args["small-clients"]} clients, ${args["small-rounds"]} × ${args["small-seconds"]} s per kind`
    : null,
].filter(Boolean);
console.log(`npm run bench: ${plan.join(" · ")}`);

const record = (into: TelemetryResult[]) => (result: TelemetryResult | null) => result && into.push(result);
if (PARTS.has("telemetry")) {
  for (const arm of ARMS)
    record(results.arms)(await attempt(`telemetry ${arm.name}`, () => runTelemetryArm(arm, options)));
}
if (PARTS.has("sweep")) {
  for (const arm of SWEEP)
    record(results.sweep)(await attempt(`sweep ${arm.name}`, () => runTelemetryArm(arm, options)));
}
if (PARTS.has("counters")) {
  const counters = count("counters", args.counters);
  for (const [mode, n] of [
    ["off", count("n-counters-off", args["n-counters-off"])],
    ["primary", count("n-counters-primary", args["n-counters-primary"])],
  ] as const) {
    const result: CountersResult | null = await attempt(`counters ${mode}`, () =>
      runCountersArm(mode, n, counters, options),
    );
    if (result) results.counters.push(result);
  }
}
if (PARTS.has("enforcement")) {
  const over = Number(args["over-percent"]);
  const result: EnforcementResult | null = await attempt("enforcement", () =>
    runEnforcement(count("projects", args.projects), over, options),
  );
  results.enforcement = result;
}
if (PARTS.has("small")) {
  const small = {
    clients: count("small-clients", args["small-clients"]),
    phaseMs: count("small-seconds", args["small-seconds"]) * 1000,
    rounds: count("small-rounds", args["small-rounds"]),
  };
  const result: SmallResult | null = await attempt("small", () => runSmall(small, options));
  results.small = result;
}
results.wallMs = Date.now() - started;

mkdirSync(path.dirname(outFile), { recursive: true });
const chart = renderChart(results);
if (chart) {
  const chartFile = outFile.replace(/\.md$/, "") + ".svg";
  writeFileSync(chartFile, chart);
  results.chart = path.basename(chartFile);
}
const markdown = renderMarkdown(results);
writeFileSync(outFile, markdown);
const rawFile = path.join(ROOT, "bench", "out", `${stamp}.json`);
mkdirSync(path.dirname(rawFile), { recursive: true });
writeFileSync(rawFile, JSON.stringify(results, null, 2));
console.log(`\n${markdown}`);
console.log(
  `written: ${path.relative(process.cwd(), outFile)}${results.chart ? ` and ${results.chart}` : ""}, raw timelines: ${path.relative(process.cwd(), rawFile)} (${fmt.s(results.wallMs)} in all)`,
);
console.log(`\n${headline(results)}`);

const errors = [
  ...results.failures,
  ...[...results.arms, ...results.sweep].flatMap((r) => (r.error ? [`${r.name}: ${r.error}`] : [])),
  ...(results.enforcement?.error ? [`enforcement: ${results.enforcement.error}`] : []),
  ...(results.small?.error ? [`small: ${results.small.error}`] : []),
];
if (errors.length > 0) {
  console.error(`BENCH FAILED:\n  ${errors.map((error) => error.split("\n")[0]).join("\n  ")}`);
  process.exit(1);
}
if (floors(results).some((floor) => !floor.ok)) {
  console.error("BENCH BELOW FLOOR (see the floors table above)");
  process.exit(1);
}
