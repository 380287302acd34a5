/**
 * `npm run bench`: end-to-end throughput of the telemetry pipeline on local workerd, two arms on
 * fresh stacks in one run:
 *   off      RUNTIME_EVENT_DO_MODE=off      the consumer does one D1 INSERT per event (the baseline)
 *   primary  RUNTIME_EVENT_DO_MODE=primary  hash shards dedupe, buffer and flush multi-row batches
 *
 * Per arm: boot, warm up (1,000 events, not measured), send N unique events as fast as ingress
 * allows (concurrent clients, 1,000-event requests, bodies serialised beforehand), and time from the
 * first send until 95 % (and 100 %) of them are visible in D1. Events/s = 0.95·N / time-to-95 %.
 * D1 and shard counters are deltas of /v1/admin/metrics over the measured window, per 1,000 events.
 *
 *   npm run bench -- [--arms off,primary] [--n-off 20000] [--n-primary 400000] [--clients 4] [--timeout 300]
 *                    [--var NAME:value ...] [--profile] [--local-observability] [--out bench/results.md]
 *
 *   --var                  extra `wrangler dev --var` for both arms, e.g. --var SHARD_COUNT:8
 *   --profile              CPU-profile the worker isolate over the measured window (bench/out/*.cpuprofile)
 *   --local-observability  keep wrangler's local trace collection on (off by default, see below)
 *
 * Writes bench/results.md (the committed summary) and bench/out/<timestamp>.json (raw timelines:
 * D1 row counts, shard buffers, queue batches; gitignored).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { z } from "zod";
import { Progress, fmt } from "./lib/report.ts";
import { type ProfileSummary, Profiler, summarize, writeProfile } from "./lib/profile.ts";
import {
  type CpuReading,
  type MachineReading,
  type Stack,
  type TelemetryMetrics,
  cpuBetween,
  machine,
  machineBetween,
  startStack,
} from "./lib/stack.ts";
import { type PlannedRequest, percentile, sendRequests, uniqueRequests } from "./lib/telemetry.ts";
import { ROOT, WRANGLER_BIN } from "./lib/wrangler.ts";

const { values: args } = parseArgs({
  options: {
    arms: { type: "string", default: "off,primary" },
    "n-off": { type: "string", default: "20000" },
    "n-primary": { type: "string", default: "400000" },
    "n-shadow": { type: "string", default: "20000" },
    clients: { type: "string", default: "4" },
    timeout: { type: "string", default: "300" },
    out: { type: "string", default: "bench/results.md" },
    "local-observability": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    var: { type: "string", multiple: true, default: [] },
  },
});

const ArmSchema = z.enum(["off", "primary", "shadow"]);
type Arm = z.infer<typeof ArmSchema>;
const ARMS = (args.arms ?? "off,primary").split(",").map((arm) => ArmSchema.parse(arm.trim()));
const N: Record<Arm, number> = {
  off: Number(args["n-off"]),
  primary: Number(args["n-primary"]),
  shadow: Number(args["n-shadow"]),
};
const CLIENTS = Number(args.clients);
const TIMEOUT_MS = Number(args.timeout) * 1000;
const WARMUP_EVENTS = 1000;
/**
 * wrangler ≥ 4.15x collects a local trace of every invocation and every SQL statement and stores it
 * in a SQLite trace store on the same workerd thread (X_LOCAL_OBSERVABILITY, default on). It halves
 * local throughput and has no production counterpart, so the benchmark turns it off unless asked.
 */
const LOCAL_OBSERVABILITY = args["local-observability"] ?? false;
const PROFILE = args.profile ?? false;
/** Extra `--var NAME:value` for both arms (e.g. `--var SHARD_COUNT:8`), to try configurations. */
const EXTRA_VARS = Object.fromEntries(
  (args.var ?? []).map((pair) => {
    const colon = pair.indexOf(":");
    if (colon <= 0) throw new Error(`--var expects NAME:value, got "${pair}"`);
    return [pair.slice(0, colon), pair.slice(colon + 1)];
  }),
);
/** Floors for this issue. */
const FLOOR = { ratio: 20, eventsPerSecond: 20_000, d1RoundTripsPer1k: 20 };
/** Rate limits lifted for the run: the benchmark measures the pipeline, not the limiter. */
const UNLIMITED =
  '{"ingest": {"limit": 1000000, "window_s": 60}, "webhook": {"limit": 60, "window_s": 60}, "admin": {"limit": 100000, "window_s": 60}}';

interface Sample {
  /** ms since the first send */
  t: number;
  rows: number;
  buffered?: number;
  roundTrips?: number;
  shardRpcs?: number;
}

interface QueueBatch {
  /** ms since the first send that the batch finished */
  t: number;
  acked: number;
  total: number;
  ms: number;
}

interface ArmResult {
  arm: Arm;
  events: number;
  sendMs: number;
  ms95: number | null;
  ms100: number | null;
  ingressPerSecond: number;
  eventsPerSecond: number;
  d1RoundTripsPer1k: number;
  d1StatementsPer1k: number;
  shardRpcsPer1k: number;
  rowsWritten: number;
  flushFailures: number;
  retries: number;
  serverErrors: number;
  latencyP50: number;
  latencyP99: number;
  queueBatches: QueueBatch[];
  /** CPU from the first send to 95 % visible: all stack processes, and the busiest thread. */
  cpu: { cores: number; busiest: string; busiestCores: number } | null;
  /** The rest of the machine over the same window (other processes, this client, CPU pressure). */
  machine: { otherCores: number; clientCores: number; cpuPressure: number | null } | null;
  profile: ProfileSummary | null;
  samples: Sample[];
  log: string;
  error?: string;
}

/** Functions whose inclusive time the profile summary reports (names as they appear in the bundle). */
const PROFILED_FUNCTIONS = [
  "postEvents",
  "readJson",
  "packEvents",
  "sendAll",
  "queue",
  "consumeTelemetry",
  "viaShards",
  "writeEachDirect",
  "ingest",
  "alarm",
  "#flush",
  "#arm",
  "getMetrics",
];

const STAMP = new Date().toISOString().replace(/[:.]/g, "-");

const progress = new Progress();

function delta(after: TelemetryMetrics, before: TelemetryMetrics) {
  return {
    roundTrips: after.d1.round_trips - before.d1.round_trips,
    statements: after.d1.statements - before.d1.statements,
    rowsWritten: after.d1.rows_written - before.d1.rows_written,
    shardRpcs: after.shard_rpcs - before.shard_rpcs,
  };
}

async function waitForRows(stack: Stack, target: number, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await stack.countD1();
    if (rows >= target) return;
    if (Date.now() > deadline)
      throw stack.failure(`${label}: ${rows} of ${target} rows in D1 after ${fmt.s(timeoutMs)}`);
    progress.update(`${label}: ${fmt.int(rows)}/${fmt.int(target)} rows in D1`);
    await sleep(250);
  }
}

async function runArm(arm: Arm): Promise<ArmResult> {
  const n = N[arm];
  console.log(`\n▶ arm ${arm}: ${fmt.int(n)} unique events, ${CLIENTS} clients, 1,000 events per request`);
  const stack = await startStack({
    name: `bench-${arm}`,
    vars: { RATE_LIMITS: UNLIMITED, ...EXTRA_VARS, RUNTIME_EVENT_DO_MODE: arm },
    env: LOCAL_OBSERVABILITY ? {} : { X_LOCAL_OBSERVABILITY: "false" },
  });
  const queueBatches: QueueBatch[] = [];
  let t0 = 0;
  stack.onLine((line) => {
    const match = /QUEUE shipyard-telemetry (\d+)\/(\d+) \((\d+)ms\)/.exec(line.text);
    if (match && t0 > 0) {
      queueBatches.push({ t: line.at - t0, acked: Number(match[1]), total: Number(match[2]), ms: Number(match[3]) });
    }
  });
  try {
    if (stack.health.modes?.runtime_events !== arm) {
      throw new Error(`stack reports RUNTIME_EVENT_DO_MODE=${stack.health.modes?.runtime_events}, expected ${arm}`);
    }
    // Warm-up: isolates, shard Durable Objects and their SQLite schemas, D1. Not measured.
    stack.mark("bench: warm-up");
    const warm = await sendRequests(stack, uniqueRequests(7, `warm-${arm}`, WARMUP_EVENTS), { clients: 1 });
    if (warm.accepted !== WARMUP_EVENTS) throw new Error(`warm-up: ${warm.accepted} of ${WARMUP_EVENTS} accepted`);
    await waitForRows(stack, WARMUP_EVENTS, 60_000, "warm-up");
    progress.done(`warm-up: ${WARMUP_EVENTS} events stored`);

    const started = Date.now();
    const requests: PlannedRequest[] = uniqueRequests(1, `bench-${arm}`, n, 1000);
    const bytes = requests.reduce((sum, request) => sum + request.body.length, 0);
    progress.done(
      `serialised ${requests.length} requests (${fmt.dec(bytes / 1024 / 1024)} MiB, ~${Math.round(bytes / n)} B/event) in ${fmt.s(Date.now() - started)}`,
    );

    const base = await stack.metrics();
    const baseRows = await stack.countD1();
    const samples: Sample[] = [];
    let sentEvents = 0;
    let sendDone = 0;
    let ms95: number | null = null;
    let ms100: number | null = null;
    let latest: TelemetryMetrics = base;

    let profiler: Profiler | null = null;
    if (PROFILE) {
      profiler = await Profiler.connect(stack.inspectorPort);
      await profiler.start();
    }
    stack.mark(`bench: measured send of ${n} events starts`);
    let cpuAt95: CpuReading | null = null;
    let machineAt95: MachineReading | null = null;
    const cpuAtStart = stack.cpu();
    const machineAtStart = machine();
    t0 = Date.now();
    const sending = sendRequests(stack, requests, {
      clients: CLIENTS,
      onProgress: (stats) => (sentEvents = stats.events),
    }).then((stats) => {
      sendDone = Date.now() - t0;
      stack.mark("bench: send done");
      return stats;
    });

    // Poll D1 (cheap: the SQLite file, read-only) every 250 ms, the metrics every 2 s.
    const deadline = t0 + TIMEOUT_MS;
    let lastMetrics = 0;
    for (;;) {
      const now = Date.now();
      const rows = (await stack.countD1()) - baseRows;
      const sample: Sample = { t: Date.now() - t0, rows };
      if (now - lastMetrics >= 2_000) {
        lastMetrics = now;
        latest = await stack.metrics();
        sample.buffered = latest.buffered;
        sample.roundTrips = latest.d1.round_trips - base.d1.round_trips;
        sample.shardRpcs = latest.shard_rpcs - base.shard_rpcs;
      }
      samples.push(sample);
      if (ms95 === null && rows >= 0.95 * n) {
        ms95 = sample.t;
        cpuAt95 = stack.cpu();
        machineAt95 = machine();
        stack.mark("bench: 95% visible");
      }
      if (rows >= n) {
        ms100 = sample.t;
        stack.mark("bench: 100% visible");
        break;
      }
      if (stack.reloads.length > 0)
        throw stack.failure("wrangler reloaded the worker (a source file changed); the run is void");
      // After 95 %, the tail gets as long again as the 95 % took (at least 30 s), then we stop.
      if (now > deadline || (ms95 !== null && sample.t > ms95 + Math.max(30_000, ms95))) break;
      progress.update(
        `[${arm}] ${fmt.s(sample.t)} · sent ${fmt.int(sentEvents)}/${fmt.int(n)}${sendDone ? ` (done at ${fmt.s(sendDone)})` : ""} · in D1 ${fmt.int(rows)} (${fmt.pct(rows / n)}) · buffered ${fmt.int(latest.buffered)} · queue batches ${queueBatches.length}`,
      );
      await sleep(250);
    }
    const sent = await sending;
    let profile: ProfileSummary | null = null;
    if (profiler) {
      const raw = await profiler.stop();
      profiler.close();
      const file = path.join(ROOT, "bench", "out", `${STAMP}-${arm}.cpuprofile`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeProfile(file, raw);
      profile = summarize(raw, PROFILED_FUNCTIONS, 12);
      progress.done(
        `CPU profile of the worker isolate: ${path.relative(process.cwd(), file)} (open in Chrome DevTools)`,
      );
    }
    const final = await stack.metrics();
    const d = delta(final, base);
    const per1k = (value: number) => (value / n) * 1000;
    const result: ArmResult = {
      arm,
      events: n,
      sendMs: sendDone,
      ms95,
      ms100,
      ingressPerSecond: n / (sendDone / 1000),
      eventsPerSecond: ms95 === null ? 0 : (0.95 * n) / (ms95 / 1000),
      d1RoundTripsPer1k: per1k(d.roundTrips),
      d1StatementsPer1k: per1k(d.statements),
      shardRpcsPer1k: per1k(d.shardRpcs),
      rowsWritten: d.rowsWritten,
      flushFailures: final.flush_failures,
      retries: sent.retries,
      serverErrors: sent.serverErrors,
      latencyP50: percentile(sent.latenciesMs, 50),
      latencyP99: percentile(sent.latenciesMs, 99),
      queueBatches,
      cpu: cpuAt95 ? cpuBetween(cpuAtStart, cpuAt95) : null,
      machine:
        cpuAt95 && machineAt95
          ? machineBetween(machineAtStart, machineAt95, cpuBetween(cpuAtStart, cpuAt95).cores)
          : null,
      profile,
      samples,
      log: stack.logPath,
    };
    if (sent.accepted !== n)
      result.error = `${sent.accepted} of ${n} events accepted (${sent.failures.slice(0, 2).join("; ")})`;
    else if (ms100 === null)
      result.error = `timed out after ${fmt.s(TIMEOUT_MS)} with ${fmt.int(samples.at(-1)?.rows ?? 0)} of ${fmt.int(n)} rows in D1`;
    progress.done(
      `[${arm}] sent in ${fmt.s(sendDone)} (${fmt.int(result.ingressPerSecond)} events/s ingress) · 95 % in D1 after ${ms95 === null ? "—" : fmt.s(ms95)} → ${fmt.int(result.eventsPerSecond)} events/s · 100 % after ${ms100 === null ? "—" : fmt.s(ms100)}`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}

function batchSummary(batches: readonly QueueBatch[]): string {
  if (batches.length === 0) return "—";
  const messages = batches.reduce((sum, batch) => sum + batch.total, 0);
  const busy = batches.reduce((sum, batch) => sum + batch.ms, 0);
  const maxMs = Math.max(...batches.map((batch) => batch.ms));
  return `${batches.length} × ${fmt.dec(messages / batches.length)} msgs, ${fmt.int(busy / batches.length)} ms avg (max ${fmt.int(maxMs)})`;
}

const PackageSchema = z.looseObject({ version: z.string() });

/** Installed version of a package, or "?". */
function installedVersion(pkg: string): string {
  try {
    return PackageSchema.parse(JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")))
      .version;
  } catch {
    return "?";
  }
}

function versions() {
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).trim();
    if (dirty) commit += " (uncommitted changes)";
  } catch {
    // Not a git checkout.
  }
  const cpus = os.cpus();
  return {
    node: process.version,
    wrangler: installedVersion("wrangler"),
    workerd: installedVersion("workerd"),
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? "?",
    memory: `${Math.round(os.totalmem() / 1024 ** 3)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    commit,
    wranglerBin: path.relative(ROOT, WRANGLER_BIN),
  };
}

function render(
  results: readonly ArmResult[],
  command: string,
  date: Date,
): { markdown: string; ok: boolean; headline: string } {
  const v = versions();
  const off = results.find((result) => result.arm === "off");
  const primary = results.find((result) => result.arm === "primary");
  const ratio = off && primary && off.eventsPerSecond > 0 ? primary.eventsPerSecond / off.eventsPerSecond : null;
  const floors: { name: string; ok: boolean; detail: string }[] = [];
  if (primary) {
    floors.push({
      name: `primary ≥ ${fmt.int(FLOOR.eventsPerSecond)} events/s`,
      ok: primary.eventsPerSecond >= FLOOR.eventsPerSecond,
      detail: `${fmt.int(primary.eventsPerSecond)} events/s`,
    });
    floors.push({
      name: `primary ≤ ${FLOOR.d1RoundTripsPer1k} D1 round trips per 1,000 events`,
      ok: primary.d1RoundTripsPer1k <= FLOOR.d1RoundTripsPer1k,
      detail: fmt.dec(primary.d1RoundTripsPer1k, 2),
    });
  }
  if (ratio !== null) {
    floors.push({ name: `primary ≥ ${FLOOR.ratio}× off`, ok: ratio >= FLOOR.ratio, detail: `${fmt.dec(ratio)}×` });
  }
  const errors = results.filter((result) => result.error);
  const ok = errors.length === 0 && floors.every((floor) => floor.ok);
  const headline =
    ratio !== null && primary && off
      ? `primary / off = ${fmt.dec(ratio)}× (${fmt.int(primary.eventsPerSecond)} vs ${fmt.int(off.eventsPerSecond)} events/s end to end)`
      : results.map((result) => `${result.arm}: ${fmt.int(result.eventsPerSecond)} events/s`).join(", ");

  const lines = [
    "# Telemetry pipeline benchmark",
    "",
    `**${headline}**`,
    "",
    `- Command: \`${command}\``,
    `- Date: ${date.toISOString()}`,
    `- Machine: ${v.cores} cores (${v.cpu}), ${v.memory}, ${v.os}`,
    `- Node ${v.node}, wrangler ${v.wrangler}, workerd ${v.workerd}; commit ${v.commit}`,
    `- Local workerd via \`wrangler dev\` (one fresh state directory per arm), ${CLIENTS} concurrent clients, 1,000-event requests; ingest rate limit lifted with \`--var RATE_LIMITS\``,
    `- wrangler's local trace collection (\`X_LOCAL_OBSERVABILITY\`) ${LOCAL_OBSERVABILITY ? "left on (`--local-observability`)" : "turned off: it records every SQL statement on the same workerd thread and roughly halves local throughput (`--local-observability` keeps it)"}`,
    "",
    "| arm | events | ingress (events/s) | to 95 % in D1 | **end to end (events/s)** | to 100 % | D1 round trips / 1k | D1 statements / 1k | shard RPCs / 1k | queue batches | request p50 / p99 |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.arm} | ${fmt.int(r.events)} | ${fmt.int(r.ingressPerSecond)} | ${r.ms95 === null ? "—" : fmt.s(r.ms95)} | **${fmt.int(r.eventsPerSecond)}** | ${r.ms100 === null ? "—" : fmt.s(r.ms100)} | ${fmt.dec(r.d1RoundTripsPer1k, 2)} | ${fmt.dec(r.d1StatementsPer1k, 2)} | ${fmt.dec(r.shardRpcsPer1k, 2)} | ${batchSummary(r.queueBatches)} | ${fmt.int(r.latencyP50)} / ${fmt.int(r.latencyP99)} ms |`,
    );
  }
  lines.push(
    "",
    "| arm | stack CPU, first send → 95 % | busiest thread | this client | other processes | CPU pressure |",
    "|---|---:|---|---:|---:|---:|",
    ...results.map((r) =>
      r.cpu && r.machine
        ? `| ${r.arm} | ${fmt.dec(r.cpu.cores, 2)} cores | ${r.cpu.busiest} at ${fmt.dec(r.cpu.busiestCores * 100, 0)} % of a core | ${fmt.dec(r.machine.clientCores, 2)} cores | ${fmt.dec(r.machine.otherCores, 2)} cores | ${r.machine.cpuPressure === null ? "—" : fmt.pct(r.machine.cpuPressure)} |`
        : `| ${r.arm} | — | — | — | — | — |`,
    ),
  );
  const busy = results.filter((r) => r.machine && (r.machine.otherCores > 0.25 || (r.machine.cpuPressure ?? 0) > 0.15));
  if (busy.length > 0) {
    lines.push(
      "",
      `**Warning:** other processes used the machine during ${busy.map((r) => r.arm).join(" and ")} (see *other processes* / *CPU pressure*); workerd runs every isolate on one thread, so these numbers are pessimistic. Re-run on a quiet machine.`,
    );
  }
  for (const r of results) {
    const seconds = (r.ms100 ?? r.ms95 ?? 0) / 1000;
    if (seconds > 0 && (seconds < 10 || seconds > 60)) {
      lines.push(
        "",
        `Note: the ${r.arm} arm took ${fmt.dec(seconds)} s (aim for 10–60 s): adjust \`--n-${r.arm}\` (now ${fmt.int(r.events)}).`,
      );
    }
  }
  lines.push("", "| floor | result | measured |", "|---|---|---:|");
  for (const floor of floors) lines.push(`| ${floor.name} | ${floor.ok ? "pass" : "**FAIL**"} | ${floor.detail} |`);
  for (const r of errors) lines.push("", `**${r.arm} did not complete:** ${r.error}`);
  for (const r of results) {
    if (!r.profile) continue;
    const p = r.profile;
    lines.push(
      "",
      `### Where the worker isolate's time goes: ${r.arm}`,
      "",
      `CPU profile of the Worker isolate (fetch, queue consumer, shard Durable Objects) over the measured window: ${fmt.s(p.totalMs)} sampled, ${fmt.s(p.busyMs)} busy (${fmt.pct(p.busyMs / Math.max(1, p.totalMs))}), GC ${fmt.s(p.gcMs)}. D1 and the local queue run in other isolates on the same workerd thread and are not in this profile.`,
      "",
      "| function (inclusive) | ms | share of busy |",
      "|---|---:|---:|",
      ...Object.entries(p.inclusive)
        .filter(([, ms]) => ms > 0)
        .toSorted((a, b) => b[1] - a[1])
        .map(([name, ms]) => `| ${name} | ${fmt.int(ms)} | ${fmt.pct(ms / p.busyMs)} |`),
      "",
      "| hottest (self time) | ms | share of busy |",
      "|---|---:|---:|",
      ...p.top.map((entry) => `| \`${entry.name}\` | ${fmt.int(entry.selfMs)} | ${fmt.pct(entry.share)} |`),
    );
  }
  lines.push(
    "",
    "How to read it: *end to end* = 0.95·N ÷ (time from the first request until 95 % of the N events are rows in D1);",
    "the last 5 % are excluded because the shards hold a partial buffer up to `FLUSH_DELAY_MS` (5 s) before flushing it.",
    "*Ingress* is N ÷ time until the last 202. Per-1k figures are deltas of `GET /v1/admin/metrics` over the measured",
    "window (after the warm-up), divided by N. *Queue batches* come from wrangler's `QUEUE shipyard-telemetry a/b (ms)` log",
    "lines: local queues deliver one batch at a time, waiting up to `max_batch_timeout` for a batch to fill.",
    "Raw timelines (D1 rows every 250 ms, shard buffers every 2 s, every queue batch) are in `bench/out/`.",
    "",
  );
  return { markdown: lines.join("\n"), ok, headline };
}

const date = new Date();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const results: ArmResult[] = [];
let failed: string | null = null;
for (const arm of ARMS) {
  try {
    results.push(await runArm(arm));
  } catch (error) {
    progress.clear();
    failed = `arm ${arm}: ${error instanceof Error ? error.message : String(error)}`;
    console.error(`\n✖ ${failed}`);
    break;
  }
}

const { markdown, ok, headline } = render(results, command, date);
const outDir = path.join(ROOT, "bench", "out");
mkdirSync(outDir, { recursive: true });
const rawFile = path.join(outDir, `${STAMP}.json`);
writeFileSync(rawFile, JSON.stringify({ date, command, versions: versions(), results }, null, 2));
if (results.length > 0) {
  const resultsFile = path.join(ROOT, args.out ?? "bench/results.md");
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, markdown);
  console.log(`\n${markdown}`);
  console.log(
    `written: ${path.relative(process.cwd(), resultsFile)}, raw timelines: ${path.relative(process.cwd(), rawFile)}`,
  );
}
console.log(`\n${headline}`);
if (failed) {
  console.error(`BENCH FAILED: ${failed}`);
  process.exit(1);
}
if (!ok) {
  console.error("BENCH BELOW FLOOR (see the table above)");
  process.exit(1);
}
