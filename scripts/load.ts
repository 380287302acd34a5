/**
 * `npm run load`: a bounded load test on loopback. N concurrent clients send a mix of requests
 * for a fixed time, then it stops by itself and reports throughput, latency percentiles and every
 * non-2xx by status and code. The goal is zero 5xx. Not part of `npm test`.
 *
 *   npm run load                                  boots a fresh local stack on a free port
 *   npm run load -- --url http://127.0.0.1:8787   against a running `npm run dev`
 *   npm run load -- --clients 200 --seconds 60 --events-per-request 100
 *   npm run load -- --local-observability         keep wrangler's local trace collection on (booted stack)
 *   npm run load -- --mix events --clients 32 --events-per-request 1
 *                                                 only POST /v1/events (small-request ingest, issue 15)
 *   npm run load -- --profile                     also CPU-profile the worker isolate (booted stack only):
 *                                                 prints the hottest functions, writes bench/out/load-*.cpuprofile
 *
 * Traffic only ever goes to 127.0.0.1 (the stack this script starts, or --url, which must be
 * loopback). Rate limits are raised for the booted stack so the test measures the pipeline, not the
 * limiter; against --url, 429s are counted and reported separately (they are not failures).
 *
 * On the booted stack it then checks exactness once the pipeline has drained: every event answered
 * 202 is a row in D1 (lost = 0) and no event of a request answered otherwise is (unexpected = 0),
 * and the counters hold exactly the increments answered 202 (ids and values carry this run's stamp,
 * so a run only counts its own). Exits 1 on any 5xx or any miss.
 */
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { Profiler, summarize, writeProfile } from "./lib/profile.ts";
import { INGEST_KEY, type Stack, startStack } from "./lib/stack.ts";
import { ROOT } from "./lib/wrangler.ts";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    clients: { type: "string", default: "200" },
    seconds: { type: "string", default: "60" },
    "events-per-request": { type: "string", default: "50" },
    profile: { type: "boolean", default: false },
    mix: { type: "string", default: "default" },
    "local-observability": { type: "boolean", default: false },
  },
});

const clients = Number(args.clients);
const seconds = Number(args.seconds);
const eventsPerRequest = Number(args["events-per-request"]);
const MixSchema = z.enum(["default", "events"]);
const mix = MixSchema.safeParse(args.mix);
if (!mix.success) {
  console.error(`load: --mix ${MixSchema.options.join("|")}, got "${args.mix}"`);
  process.exit(2);
}
if (
  !(clients > 0 && clients <= 2000 && seconds > 0 && seconds <= 600 && eventsPerRequest > 0 && eventsPerRequest <= 1000)
) {
  console.error("load: --clients 1..2000, --seconds 1..600, --events-per-request 1..1000");
  process.exit(2);
}

let stack: Stack | null = null;
let base = args.url;
if (base) {
  const host = new URL(base).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    console.error("load: --url must be a loopback address");
    process.exit(2);
  }
} else {
  stack = await startStack({
    name: "load",
    vars: {
      RATE_LIMITS: JSON.stringify({
        ingest: { limit: 1_000_000, window_s: 60 },
        webhook: { limit: 10_000, window_s: 60 },
        admin: { limit: 100_000, window_s: 60 },
      }),
    },
    // As in the benchmark: wrangler's local trace store (every invocation and SQL statement, on
    // the same workerd thread) has no production counterpart and would be most of the profile.
    env: args["local-observability"] ? {} : { X_LOCAL_OBSERVABILITY: "false" },
  });
  base = stack.url;
}

const auth = { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" };
const latencies: number[] = [];
const outcomes = new Map<string, number>();
let requests = 0;
let events = 0;
let sequence = 0;
/** This run's ids and counter keys start with it, so the check below counts only this run's rows. */
const stamp = `load-${Date.now().toString(36)}`;
const acceptedEvents = new Set<string>();
let acceptedIncrements = 0;

function count(key: string): void {
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}

/**
 * One request of the mix: mostly telemetry, some counter increments and reads, a few health
 * checks (`--mix default`), or telemetry only (`--mix events`).
 */
async function oneRequest(client: number): Promise<void> {
  const n = sequence++;
  const kind = mix.data === "events" ? 0 : n % 20;
  let response: Response;
  const started = performance.now();
  if (kind < 14) {
    const batch = Array.from({ length: eventsPerRequest }, (_, i) => ({
      id: `${stamp}-${client}-${n}-${i}`,
      project_id: `load-p${n % 50}`,
      type: "request",
      ts: Date.now(),
      data: { status: 200, ms: i },
    }));
    response = await fetch(`${base}/v1/events`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ events: batch }),
    });
    if (response.status === 202) {
      events += batch.length;
      for (const event of batch) acceptedEvents.add(event.id);
    }
  } else if (kind < 18) {
    const increments = Array.from({ length: 10 }, (_, i) => ({
      id: `${stamp}-inc-${client}-${n}-${i}`,
      scope: "post",
      key: `${stamp}-${n % 100}`,
      field: "views",
      delta: 1,
    }));
    response = await fetch(`${base}/v1/counters`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ increments }),
    });
    if (response.status === 202) acceptedIncrements += increments.length;
  } else if (kind < 19) {
    response = await fetch(`${base}/v1/counters/post/${stamp}-${n % 100}`, { headers: auth });
  } else {
    response = await fetch(`${base}/v1/health`);
  }
  const body = await response.text();
  latencies.push(performance.now() - started);
  requests++;
  if (response.ok) {
    count(String(response.status));
    return;
  }
  const parsed = ErrorBodySchema.safeParse(safeJson(body));
  count(`${response.status} ${parsed.success ? parsed.data.error.code : "(not the contract's JSON)"}`);
}

/**
 * Functions of the per-request path and the pipeline behind it whose inclusive time the profile
 * reports (names as they appear in wrangler's bundle; `check` is the limiter's decision, `sync`
 * its batched call to the shard, `queue` the consumer).
 */
const PROFILED_FUNCTIONS = [
  "postEvents",
  "withRateLimit",
  "authenticate",
  "check",
  "sync",
  "readJson",
  "sendSized",
  "getHealth",
  "queue",
  "ingest",
  "alarm",
];

const ErrorBodySchema = z.object({ error: z.object({ code: z.string() }) });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

console.log(
  `load: ${clients} clients for ${seconds} s against ${base} (${eventsPerRequest} events per telemetry request, mix ${mix.data})`,
);
if (args.profile && !stack) {
  console.error("load: --profile needs the stack this script boots (no --url)");
  process.exit(2);
}
const profiler = stack && args.profile ? await Profiler.connect(stack.inspectorPort) : null;
await profiler?.start();
const deadline = Date.now() + seconds * 1000;
const startedAt = Date.now();
const ticker = setInterval(() => {
  const elapsed = (Date.now() - startedAt) / 1000;
  process.stdout.write(`\r  ${elapsed.toFixed(0)} s: ${requests} requests, ${(requests / elapsed).toFixed(0)} req/s`);
}, 1000);
try {
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (Date.now() < deadline) {
        try {
          await oneRequest(client);
        } catch (error) {
          count(`network ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }),
  );
} finally {
  clearInterval(ticker);
}
const elapsed = (Date.now() - startedAt) / 1000;
const fiveXx = [...outcomes]
  .filter(([key]) => key.startsWith("5") || key.startsWith("network"))
  .reduce((n, [, v]) => n + v, 0);

console.log("\n");
console.log(`requests      ${requests} in ${elapsed.toFixed(1)} s = ${(requests / elapsed).toFixed(0)} req/s`);
console.log(`events        ${events} accepted = ${(events / elapsed).toFixed(0)} events/s`);
console.log(
  `latency ms    p50 ${percentile(latencies, 50).toFixed(1)}  p95 ${percentile(latencies, 95).toFixed(1)}  p99 ${percentile(latencies, 99).toFixed(1)}  max ${Math.max(0, ...latencies).toFixed(1)}`,
);
console.log("outcomes");
for (const [key, value] of [...outcomes].toSorted((a, b) => b[1] - a[1])) console.log(`  ${key.padEnd(40)} ${value}`);
console.log(fiveXx === 0 ? "5xx           0 (goal met)" : `5xx           ${fiveXx} (goal: 0)`);

if (profiler) {
  const raw = await profiler.stop();
  profiler.close();
  const outDir = path.join(ROOT, "bench", "out");
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `load-${new Date().toISOString().replaceAll(":", "-")}.cpuprofile`);
  writeProfile(file, raw);
  const summary = summarize(raw, PROFILED_FUNCTIONS, 15);
  console.log(
    `\nworker isolate: ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.totalMs / 1000).toFixed(1)} s sampled (GC ${(summary.gcMs / 1000).toFixed(1)} s); hottest by self time:`,
  );
  for (const entry of summary.top) {
    console.log(
      `  ${entry.name.padEnd(60)} ${entry.selfMs.toFixed(0).padStart(7)} ms  ${(entry.share * 100).toFixed(1)} %`,
    );
  }
  console.log(`per request (${requests} requests), inclusive of what each calls:`);
  for (const [name, ms] of Object.entries(summary.inclusive).toSorted((a, b) => b[1] - a[1])) {
    if (ms === 0) continue;
    console.log(`  ${name.padEnd(60)} ${((ms * 1000) / Math.max(1, requests)).toFixed(0).padStart(7)} µs`);
  }
  console.log(
    `  ${"(busy time of the isolate ÷ requests)".padEnd(60)} ${((summary.busyMs * 1000) / Math.max(1, requests)).toFixed(0).padStart(7)} µs`,
  );
  console.log(`profile: ${path.relative(ROOT, file)} (open in Chrome DevTools)`);
}

/**
 * Once the pipeline drained (or `timeoutMs` passed): lost = events answered 202 that are not rows
 * in D1, unexpected = rows of this run never answered 202; counters = the sum of this run's counter
 * values against the increments answered 202 (each +1).
 */
async function exactness(booted: Stack, timeoutMs = 120_000) {
  const range = `id >= '${stamp}-' AND id < '${stamp}-~'`;
  const deadline = Date.now() + timeoutMs;
  const sumOfCounters = async () =>
    Number(
      (
        await booted.queryD1(
          `SELECT COALESCE(SUM(value), 0) AS n FROM counters WHERE key >= '${stamp}-' AND key < '${stamp}-~'`,
        )
      )[0]?.n ?? 0,
    );
  for (;;) {
    const rows = await booted.countD1(`SELECT COUNT(*) AS n FROM runtime_events WHERE ${range}`);
    const counted = await sumOfCounters();
    if ((rows >= acceptedEvents.size && counted >= acceptedIncrements) || Date.now() > deadline) break;
    process.stdout.write(
      `\r  draining: ${rows}/${acceptedEvents.size} events, ${counted}/${acceptedIncrements} increments in D1`,
    );
    await sleep(500);
  }
  // A last look after the counts matched: anything late (a redelivery) would show as unexpected.
  await sleep(1_000);
  const stored = new Set(
    (await booted.queryD1(`SELECT id FROM runtime_events WHERE ${range}`)).map((row) => String(row.id)),
  );
  let lost = 0;
  for (const id of acceptedEvents) if (!stored.has(id)) lost++;
  let unexpected = 0;
  for (const id of stored) if (!acceptedEvents.has(id)) unexpected++;
  return { lost, unexpected, stored: stored.size, counted: await sumOfCounters() };
}

let exact = true;
if (stack) {
  const check = await exactness(stack);
  const countersExact = check.counted === acceptedIncrements;
  exact = check.lost === 0 && check.unexpected === 0 && countersExact;
  console.log(
    `\nexactness     events: ${acceptedEvents.size} accepted, ${check.stored} in D1, lost ${check.lost}, unexpected ${check.unexpected}; counters: ${acceptedIncrements} increments accepted, ${check.counted} counted${exact ? " (goal met)" : " (goal: lost 0, unexpected 0, counters exact)"}`,
  );
} else {
  console.log("exactness     not checked against --url (D1 is read from the booted stack's state directory)");
}

await stack?.stop();
process.exit(fiveXx === 0 && exact ? 0 : 1);
