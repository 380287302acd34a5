/**
 * The counters part of `npm run bench`: counter increments end to end on a fresh stack per arm,
 * `COUNTER_DO_MODE=off` (a D1 flush per increment) against `primary` (counter shards merge and
 * flush batches). Per arm: send N unique increments (delta 1) over K counters from concurrent
 * clients and time from the first send until D1's counters sum to N. Increments/s, D1 round trips
 * and statements and Durable Object requests per 1,000 increments (deltas of
 * `GET /v1/admin/metrics`), and the rate limiter's cost per request.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { fmt } from "../lib/report.ts";
import {
  ADMIN_TOKEN,
  INGEST_KEY,
  type MemoryReading,
  type Stack,
  machine,
  maxMemory,
  startStack,
} from "../lib/stack.ts";
import { type BenchOptions, type CpuSummary, UNLIMITED, cpuSummary, expectMode, stackEnv } from "./common.ts";

const CountersMetricsSchema = z.looseObject({
  counters: z.looseObject({
    d1: z.looseObject({ round_trips: z.number(), statements: z.number() }),
    shard_rpcs: z.number(),
    shard_alarms: z.number(),
  }),
  rate_limits: z.looseObject({ checks: z.number(), rows_read: z.number(), rows_written: z.number() }),
});
type CountersMetrics = z.infer<typeof CountersMetricsSchema>;
const SumSchema = z.array(z.object({ n: z.number().nullable() }));

export interface CountersResult {
  mode: "off" | "primary";
  increments: number;
  counters: number;
  ms: number;
  perSecond: number;
  d1RoundTripsPer1k: number;
  d1StatementsPer1k: number;
  /** Counter shard RPCs plus shard alarms, per 1,000 increments. */
  doRequestsPer1k: number;
  /** The rate limiter's work per rate-limited request: checks (Durable Object RPCs) and SQLite rows. */
  limiter: { requests: number; checks: number; rowsRead: number; rowsWritten: number };
  cpu: CpuSummary;
  memory: MemoryReading;
}

async function countersMetrics(stack: Stack): Promise<CountersMetrics> {
  return CountersMetricsSchema.parse((await stack.request("GET", "/v1/admin/metrics", { token: ADMIN_TOKEN })).body);
}

/** `n` unique increments of delta 1 over `counters` keys, as 1,000-increment request bodies. */
function incrementBodies(n: number, counters: number): string[] {
  const bodies: string[] = [];
  for (let start = 0; start < n; start += 1000) {
    const increments = Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({
      id: `b-${start + i}`,
      scope: "post",
      key: `k${(start + i) % counters}`,
      field: "views",
      delta: 1,
    }));
    bodies.push(JSON.stringify({ increments }));
  }
  return bodies;
}

/** Runs one counters arm on its own stack. */
export async function runCountersArm(
  mode: "off" | "primary",
  n: number,
  counters: number,
  options: BenchOptions,
): Promise<CountersResult> {
  console.log(`\n▶ counters ${mode}: ${fmt.int(n)} unique increments over ${fmt.int(counters)} counters`);
  const stack = await startStack({
    name: `bench-counters-${mode}`,
    vars: { RATE_LIMITS: UNLIMITED, ...options.extraVars, COUNTER_DO_MODE: mode },
    env: stackEnv(options),
  });
  try {
    expectMode(stack, "counters", mode);
    const bodies = incrementBodies(n, counters);
    const before = await countersMetrics(stack);
    let memory = stack.memory();
    const cpuAtStart = stack.cpu();
    const machineAtStart = machine();
    const started = Date.now();
    let next = 0;
    let requests = 0;
    const sending = Promise.all(
      Array.from({ length: options.clients }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++];
          for (;;) {
            const answer = await stack.request("POST", "/v1/counters", { token: INGEST_KEY, rawBody: body });
            requests++;
            if (answer.status === 202) break;
            await sleep(200);
          }
        }
      }),
    );
    for (;;) {
      const [row] = SumSchema.parse(await stack.queryD1("SELECT SUM(value) AS n FROM counters"));
      memory = maxMemory(memory, stack.memory());
      const sum = row?.n ?? 0;
      if (sum >= n) break;
      if (Date.now() - started > options.timeoutMs) throw stack.failure(`counters ${mode}: ${sum} of ${n} in D1`);
      options.progress.update(
        `[counters ${mode}] ${fmt.s(Date.now() - started)} · in D1 ${fmt.int(sum)}/${fmt.int(n)}`,
      );
      await sleep(250);
    }
    const ms = Date.now() - started;
    const cpu = cpuSummary(cpuAtStart, stack.cpu(), machineAtStart, machine());
    await sending;
    const after = await countersMetrics(stack);
    const per1k = (value: number) => (value / n) * 1000;
    const result: CountersResult = {
      mode,
      increments: n,
      counters,
      ms,
      perSecond: n / (ms / 1000),
      d1RoundTripsPer1k: per1k(after.counters.d1.round_trips - before.counters.d1.round_trips),
      d1StatementsPer1k: per1k(after.counters.d1.statements - before.counters.d1.statements),
      doRequestsPer1k: per1k(
        after.counters.shard_rpcs -
          before.counters.shard_rpcs +
          after.counters.shard_alarms -
          before.counters.shard_alarms,
      ),
      limiter: {
        requests,
        checks: (after.rate_limits.checks - before.rate_limits.checks) / requests,
        rowsRead: (after.rate_limits.rows_read - before.rate_limits.rows_read) / requests,
        rowsWritten: (after.rate_limits.rows_written - before.rate_limits.rows_written) / requests,
      },
      cpu,
      memory,
    };
    options.progress.done(
      `[counters ${mode}] all in D1 after ${fmt.s(ms)} → ${fmt.int(result.perSecond)} increments/s · ${fmt.dec(result.d1RoundTripsPer1k, 2)} D1 round trips / 1k`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}
