/**
 * One telemetry arm of `npm run bench`, end to end on a fresh local stack: boot with the arm's
 * vars, warm up (1,000 events, not measured), send N unique events as fast as ingress allows
 * (concurrent clients, 1,000-event requests serialised beforehand) and poll D1 until they are all
 * visible. Events/s = 0.95·N ÷ time from the first send until 95 % are rows in D1. Per event: the
 * time from its request's 202 until it is visible (scripts/bench/visibility.ts). D1 and Durable
 * Object figures are deltas of `GET /v1/admin/metrics` over the measured window.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { type ProfileSummary, Profiler, summarize, writeProfile } from "../lib/profile.ts";
import { fmt } from "../lib/report.ts";
import { type MemoryReading, type Stack, type TelemetryMetrics, machine, maxMemory, startStack } from "../lib/stack.ts";
import { percentile, sendRequests, uniqueRequests } from "../lib/telemetry.ts";
import { ROOT } from "../lib/wrangler.ts";
import { type BenchOptions, type CpuSummary, UNLIMITED, cpuSummary, expectMode, stackEnv } from "./common.ts";
import { type LatencySummary, Visibility } from "./visibility.ts";

/** What an arm runs: a label for the report, the mode, how many events, and its own vars. */
export interface TelemetryArm {
  /** Names the arm in tables and file names, e.g. "off" or "shards-8". */
  name: string;
  mode: "off" | "batch" | "primary" | "shadow";
  events: number;
  vars: Record<string, string>;
}

/** One point of the timeline kept in bench/out/ (ms since the first send). */
interface Sample {
  t: number;
  rows: number;
  buffered?: number;
  roundTrips?: number;
  shardRpcs?: number;
}

/** A local queue batch, from wrangler's `QUEUE shipyard-telemetry acked/total (ms)` line. */
export interface QueueBatch {
  /** ms since the first send that the batch finished */
  t: number;
  acked: number;
  total: number;
  ms: number;
}

export interface TelemetryResult {
  name: string;
  mode: string;
  shardCount: number;
  events: number;
  sendMs: number;
  ms95: number | null;
  ms100: number | null;
  ingressPerSecond: number;
  /** End to end: 0.95·N ÷ time to 95 % visible. */
  eventsPerSecond: number;
  latency: LatencySummary;
  d1RoundTripsPer1k: number;
  d1StatementsPer1k: number;
  shardRpcsPer1k: number;
  shardAlarmsPer1k: number;
  /** Durable Object requests the pipeline made: shard RPCs plus shard alarms. */
  doRequestsPer1k: number;
  rowsWritten: number;
  /** D1's database size (every table and index) ÷ rows of runtime_events, after the arm. */
  d1BytesPerRow: number;
  flushFailures: number;
  retries: number;
  serverErrors: number;
  /** Client-side HTTP latency of `POST /v1/events` (until the 202). */
  requestP50: number;
  requestP99: number;
  queueBatches: QueueBatch[];
  /** First send → 95 % visible. */
  cpu: CpuSummary | null;
  /** Peak over the arm's measured window (sampled every poll). */
  memory: MemoryReading;
  profile: ProfileSummary | null;
  samples: Sample[];
  log: string;
  error?: string;
}

/** The D1 database's size as SQLite sees it (through the WAL) and the events it holds. */
const DATABASE_SIZE_SQL =
  "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()) AS bytes, (SELECT COUNT(*) FROM runtime_events) AS rows";
const SizeSchema = z.object({ bytes: z.coerce.number(), rows: z.coerce.number() });

const WARMUP_EVENTS = 1000;
const REQUEST_EVENTS = 1000;
/** How often D1 is polled for visible rows (the latency's granularity), and the metrics. */
export const POLL_MS = 200;
const METRICS_EVERY_MS = 2_000;

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
  "writeWholeBatch",
  "ingest",
  "alarm",
  "#flush",
  "#arm",
  "getMetrics",
];

async function waitForRows(stack: Stack, target: number, options: BenchOptions, label: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rows = await stack.countD1();
    if (rows >= target) return;
    if (Date.now() > deadline) throw stack.failure(`${label}: ${rows} of ${target} rows in D1 after 60 s`);
    options.progress.update(`${label}: ${fmt.int(rows)}/${fmt.int(target)} rows in D1`);
    await sleep(250);
  }
}

/** Runs one arm on its own stack; the stack is stopped whatever happens. */
export async function runTelemetryArm(arm: TelemetryArm, options: BenchOptions): Promise<TelemetryResult> {
  const { progress } = options;
  const n = arm.events;
  console.log(
    `\n▶ telemetry ${arm.name}: RUNTIME_EVENT_DO_MODE=${arm.mode}, ${fmt.int(n)} unique events, ${options.clients} clients, ${fmt.int(REQUEST_EVENTS)} events per request`,
  );
  const stack = await startStack({
    name: `bench-${arm.name}`,
    vars: { RATE_LIMITS: UNLIMITED, ...arm.vars, ...options.extraVars, RUNTIME_EVENT_DO_MODE: arm.mode },
    env: stackEnv(options),
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
    expectMode(stack, "runtime_events", arm.mode);
    // Warm-up: isolates, shard Durable Objects and their SQLite schemas, D1. Not measured.
    stack.mark("bench: warm-up");
    const warm = await sendRequests(stack, uniqueRequests(7, `warm-${arm.name}`, WARMUP_EVENTS), { clients: 1 });
    if (warm.accepted !== WARMUP_EVENTS) throw new Error(`warm-up: ${warm.accepted} of ${WARMUP_EVENTS} accepted`);
    await waitForRows(stack, WARMUP_EVENTS, options, "warm-up");
    progress.done(`warm-up: ${WARMUP_EVENTS} events stored`);

    const prefix = `bench-${arm.name}`;
    const serialising = Date.now();
    const requests = uniqueRequests(1, prefix, n, REQUEST_EVENTS);
    const bytes = requests.reduce((sum, request) => sum + request.body.length, 0);
    progress.done(
      `serialised ${requests.length} requests (${fmt.dec(bytes / 1024 / 1024)} MiB, ~${Math.round(bytes / n)} B/event) in ${fmt.s(Date.now() - serialising)}`,
    );

    const base = await stack.metrics();
    const visibility = new Visibility(stack, prefix, REQUEST_EVENTS);
    await visibility.start();
    const samples: Sample[] = [];
    let sentEvents = 0;
    let sendDone = 0;
    let ms95: number | null = null;
    let ms100: number | null = null;
    let latest: TelemetryMetrics = base;
    let memory = stack.memory();

    let profiler: Profiler | null = null;
    if (options.profile) {
      profiler = await Profiler.connect(stack.inspectorPort);
      await profiler.start();
    }
    stack.mark(`bench: measured send of ${n} events starts`);
    let cpu: CpuSummary | null = null;
    const cpuAtStart = stack.cpu();
    const machineAtStart = machine();
    t0 = Date.now();
    const sending = sendRequests(stack, requests, {
      clients: options.clients,
      onProgress: (stats) => (sentEvents = stats.events),
    }).then((stats) => {
      sendDone = Date.now() - t0;
      stack.mark("bench: send done");
      return stats;
    });

    const deadline = t0 + options.timeoutMs;
    // The metrics go through the worker, which can take seconds to answer while the consumer holds
    // the thread (arm A): read them alongside, never in the way of the D1 polls that time visibility.
    let lastMetrics = 0;
    let metricsInFlight = false;
    const readMetrics = async (sample: Sample) => {
      try {
        latest = await stack.metrics();
        sample.buffered = latest.buffered;
        sample.roundTrips = latest.d1.round_trips - base.d1.round_trips;
        sample.shardRpcs = latest.shard_rpcs - base.shard_rpcs;
      } catch {
        // A timeline point is missing; the final metrics below decide the figures.
      } finally {
        metricsInFlight = false;
      }
    };
    for (;;) {
      const now = Date.now();
      const rows = await visibility.poll();
      memory = maxMemory(memory, stack.memory());
      const sample: Sample = { t: now - t0, rows };
      if (!metricsInFlight && now - lastMetrics >= METRICS_EVERY_MS) {
        lastMetrics = now;
        metricsInFlight = true;
        void readMetrics(sample);
      }
      samples.push(sample);
      if (ms95 === null && rows >= 0.95 * n) {
        ms95 = sample.t;
        cpu = cpuSummary(cpuAtStart, stack.cpu(), machineAtStart, machine());
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
        `[${arm.name}] ${fmt.s(sample.t)} · sent ${fmt.int(sentEvents)}/${fmt.int(n)}${sendDone ? ` (done at ${fmt.s(sendDone)})` : ""} · in D1 ${fmt.int(rows)} (${fmt.pct(rows / n)}) · buffered ${fmt.int(latest.buffered)} · queue batches ${queueBatches.length} · workerd ${fmt.mib(memory.workerd)} peak`,
      );
      await sleep(POLL_MS);
    }
    const sent = await sending;
    let profile: ProfileSummary | null = null;
    if (profiler) {
      const raw = await profiler.stop();
      profiler.close();
      const file = path.join(ROOT, "bench", "out", `${options.stamp}-${arm.name}.cpuprofile`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeProfile(file, raw);
      profile = summarize(raw, PROFILED_FUNCTIONS, 12);
      progress.done(
        `CPU profile of the worker isolate: ${path.relative(process.cwd(), file)} (open in Chrome DevTools)`,
      );
    }
    const final = await stack.metrics();
    const size = SizeSchema.parse((await stack.queryD1(DATABASE_SIZE_SQL))[0] ?? { bytes: 0, rows: 0 });
    const per1k = (value: number) => (value / n) * 1000;
    const shardRpcs = final.shard_rpcs - base.shard_rpcs;
    const shardAlarms = final.shard_alarms - base.shard_alarms;
    const result: TelemetryResult = {
      name: arm.name,
      mode: arm.mode,
      shardCount: final.shard_count,
      events: n,
      sendMs: sendDone,
      ms95,
      ms100,
      ingressPerSecond: n / (sendDone / 1000),
      eventsPerSecond: ms95 === null ? 0 : (0.95 * n) / (ms95 / 1000),
      latency: visibility.summary(sent.acceptedAt),
      d1RoundTripsPer1k: per1k(final.d1.round_trips - base.d1.round_trips),
      d1StatementsPer1k: per1k(final.d1.statements - base.d1.statements),
      shardRpcsPer1k: per1k(shardRpcs),
      shardAlarmsPer1k: per1k(shardAlarms),
      doRequestsPer1k: per1k(shardRpcs + shardAlarms),
      rowsWritten: final.d1.rows_written - base.d1.rows_written,
      d1BytesPerRow: size.rows > 0 ? size.bytes / size.rows : 0,
      flushFailures: final.flush_failures,
      retries: sent.retries,
      serverErrors: sent.serverErrors,
      requestP50: percentile(sent.latenciesMs, 50),
      requestP99: percentile(sent.latenciesMs, 99),
      queueBatches,
      cpu,
      memory,
      profile,
      samples,
      log: stack.logPath,
    };
    if (sent.accepted !== n)
      result.error = `${sent.accepted} of ${n} events accepted (${sent.failures.slice(0, 2).join("; ")})`;
    else if (ms100 === null) result.error = `timed out with ${fmt.int(visibility.visible)} of ${fmt.int(n)} rows in D1`;
    progress.done(
      `[${arm.name}] sent in ${fmt.s(sendDone)} (${fmt.int(result.ingressPerSecond)} events/s ingress) · 95 % in D1 after ${ms95 === null ? "—" : fmt.s(ms95)} → ${fmt.int(result.eventsPerSecond)} events/s · 100 % after ${ms100 === null ? "—" : fmt.s(ms100)} · visible p50/p99 ${fmt.int(result.latency.p50)}/${fmt.int(result.latency.p99)} ms · workerd peak ${fmt.mib(memory.workerd)}`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}
