/**
 * `npm run bench:counters`: counter increments end to end on local workerd, `COUNTER_DO_MODE=off`
 * (a D1 flush per increment) against `primary` (counter shards merge and flush batches), each on a
 * fresh stack. Per arm: send N unique increments (delta 1) over K counters from concurrent clients,
 * time from the first send until D1's counters sum to N, and report increments/s and D1 round
 * trips / statements per 1,000 increments (deltas of `GET /v1/admin/metrics`).
 *
 *   npm run bench:counters -- [--n-off 5000] [--n-primary 100000] [--counters 1000] [--clients 4]
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { ADMIN_TOKEN, INGEST_KEY, startStack } from "./lib/stack.ts";

const { values: args } = parseArgs({
  options: {
    "n-off": { type: "string", default: "5000" },
    "n-primary": { type: "string", default: "100000" },
    counters: { type: "string", default: "1000" },
    clients: { type: "string", default: "4" },
  },
});

const CountersMetricsSchema = z.object({
  counters: z.object({ d1: z.object({ round_trips: z.number(), statements: z.number() }), shard_rpcs: z.number() }),
  rate_limits: z.object({ checks: z.number(), rows_read: z.number(), rows_written: z.number() }),
});
const SumSchema = z.array(z.object({ n: z.number().nullable() }));

interface ArmResult {
  arm: string;
  n: number;
  perSecond: number;
  seconds: number;
  roundTrips: number;
  statements: number;
  shardRpcs: number;
  /** The rate limiter's work per rate-limited request: checks (Durable Object RPCs) and SQLite rows. */
  limiter: { checks: number; rowsRead: number; rowsWritten: number; requests: number };
}

async function arm(mode: "off" | "primary", n: number): Promise<ArmResult> {
  const stack = await startStack({
    name: `bench-counters-${mode}`,
    vars: {
      COUNTER_DO_MODE: mode,
      RATE_LIMITS: JSON.stringify({
        ingest: { limit: 1_000_000, window_s: 60 },
        admin: { limit: 100_000, window_s: 60 },
      }),
    },
    env: { X_LOCAL_OBSERVABILITY: "false" },
  });
  try {
    const counters = Number(args.counters);
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
    const before = CountersMetricsSchema.parse(
      (await stack.request("GET", "/v1/admin/metrics", { token: ADMIN_TOKEN })).body,
    );
    const started = performance.now();
    let next = 0;
    let requests = 0;
    await Promise.all(
      Array.from({ length: Number(args.clients) }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++];
          for (;;) {
            const answer = await stack.request("POST", "/v1/counters", { token: INGEST_KEY, rawBody: body });
            requests++;
            if (answer.status === 202) break;
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      }),
    );
    for (;;) {
      const [row] = SumSchema.parse(await stack.queryD1("SELECT SUM(value) AS n FROM counters"));
      if ((row?.n ?? 0) >= n) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const seconds = (performance.now() - started) / 1000;
    const after = CountersMetricsSchema.parse(
      (await stack.request("GET", "/v1/admin/metrics", { token: ADMIN_TOKEN })).body,
    );
    const per1k = (value: number) => (value / n) * 1000;
    return {
      arm: mode,
      n,
      seconds,
      perSecond: n / seconds,
      roundTrips: per1k(after.counters.d1.round_trips - before.counters.d1.round_trips),
      statements: per1k(after.counters.d1.statements - before.counters.d1.statements),
      shardRpcs: per1k(after.counters.shard_rpcs - before.counters.shard_rpcs),
      limiter: {
        requests,
        checks: (after.rate_limits.checks - before.rate_limits.checks) / requests,
        rowsRead: (after.rate_limits.rows_read - before.rate_limits.rows_read) / requests,
        rowsWritten: (after.rate_limits.rows_written - before.rate_limits.rows_written) / requests,
      },
    };
  } finally {
    await stack.stop();
  }
}

const results = [await arm("off", Number(args["n-off"])), await arm("primary", Number(args["n-primary"]))];
console.log(
  "\n| arm | increments | to all in D1 | increments/s | D1 round trips / 1k | D1 statements / 1k | shard RPCs / 1k |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.arm} | ${r.n.toLocaleString("en")} | ${r.seconds.toFixed(1)} s | ${Math.round(r.perSecond).toLocaleString("en")} | ${r.roundTrips.toFixed(2)} | ${r.statements.toFixed(2)} | ${r.shardRpcs.toFixed(2)} |`,
  );
}
console.log(
  "\n| arm | rate-limited requests | limiter checks / request | SQLite rows read / request | rows written / request |",
);
console.log("|---|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.arm} | ${r.limiter.requests} | ${r.limiter.checks.toFixed(2)} | ${r.limiter.rowsRead.toFixed(2)} | ${r.limiter.rowsWritten.toFixed(2)} |`,
  );
}
console.log(
  "(each request is one RPC to its identifier's RateLimitShard; the metrics reads themselves add one admin check each)",
);
const [off, primary] = results;
if (off && primary) console.log(`\nprimary / off = ${(primary.perSecond / off.perSecond).toFixed(1)}×`);
