/**
 * The counters part of the demo: plan increments over a few hundred counters (skewed, so some are
 * hot), ~20 % of them repeats of an id sent in an earlier request (a client retrying), send them
 * from concurrent clients, keep the model (each id applied once), then wait until D1 `counters`
 * equals the model after the shards flushed, and check every counter through the API as well.
 * Only positive deltas: clamping at 0 is covered by the tests, and with positive deltas the model
 * does not depend on the order in which increments are applied.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { type Phase, fmt } from "../lib/report.ts";
import { INGEST_KEY, type Stack } from "../lib/stack.ts";
import { percentile, rng } from "../lib/telemetry.ts";
import { apiCall, apiCallAs, brief, waitFor } from "./api.ts";
import { type DemoContext, SECTION, need } from "./context.ts";

export interface CountersOptions {
  increments: number;
  repeatRate: number;
  clients: number;
  seed: number;
  /** How long to wait for D1 to match the model. */
  timeoutMs: number;
}

type Scope = "post" | "user";

interface Increment {
  id: string;
  scope: Scope;
  key: string;
  field: string;
  delta: number;
}

/** A counted thing: `GET /v1/counters/:scope/:key` answers all its fields. */
interface CounterObject {
  scope: Scope;
  key: string;
  /** field → value the API and D1 must show. */
  expected: Map<string, number>;
}

interface CounterPlan {
  requests: { body: string; increments: number }[];
  sent: number;
  unique: number;
  repeated: number;
  objects: CounterObject[];
  /** Distinct (scope, key, field) with a value. */
  counters: number;
  /** The object with the most increments (its GET shows read-your-writes first). */
  hottest: CounterObject;
}

interface CounterSendStats {
  accepted: number;
  statuses: Map<number, number>;
  retries: number;
  serverErrors: number;
  failures: string[];
  latenciesMs: number[];
  ms: number;
}

export interface CountersState {
  plan?: CounterPlan;
  sent?: CounterSendStats;
  sentAt?: number;
}

const COUNTERS = "Counters";
const TIMES = SECTION.times;
const POSTS = 150;
const USERS = 50;
const FIELDS: Record<Scope, readonly (readonly [string, number])[]> = {
  // field, largest delta
  post: [
    ["likes", 1],
    ["views", 5],
  ],
  user: [
    ["followers", 1],
    ["points", 10],
  ],
};

const AcceptedSchema = z.looseObject({ accepted: z.number() });
const CounterRowSchema = z.object({ scope: z.string(), key: z.string(), field: z.string(), value: z.number() });
const CountSchema = z.object({ n: z.number() });
/** `GET /v1/admin/metrics` → `counters` (since the worker started; only this phase sends increments). */
const CounterMetricsSchema = z.looseObject({
  counters: z.looseObject({
    held: z.number(),
    flush_failures: z.number(),
    shard_rpcs: z.number(),
    d1: z.looseObject({ round_trips: z.number(), statements: z.number(), rows_written: z.number() }),
  }),
});
type CounterMetrics = z.infer<typeof CounterMetricsSchema>["counters"];

function state(ctx: DemoContext): CountersState {
  ctx.counters ??= {};
  return ctx.counters;
}

const objectKey = (scope: string, key: string) => `${scope}/${key}`;

/** Seeded plan: requests of 100–1000 increments; a repeat is the identical increment (same id) again. */
function planIncrements(options: CountersOptions): CounterPlan {
  const random = rng(options.seed ^ 0x5bd1e995);
  const prefix = `demo-${options.seed}`;
  const objects: CounterObject[] = [
    ...Array.from({ length: POSTS }, (_, i) => ({ scope: "post" as const, key: `${prefix}-post-${i}` })),
    ...Array.from({ length: USERS }, (_, i) => ({ scope: "user" as const, key: `${prefix}-user-${i}` })),
  ].map((object) => ({ ...object, expected: new Map<string, number>() }));
  const hits = new Map<CounterObject, number>();
  const earlier: Increment[] = [];
  const requests: CounterPlan["requests"] = [];
  let sent = 0;
  let unique = 0;
  let repeated = 0;
  while (sent < options.increments) {
    const size = Math.min(options.increments - sent, 100 + Math.floor(random() * 901));
    const batch: Increment[] = [];
    for (let i = 0; i < size; i++) {
      const again = earlier.length > 0 && random() < options.repeatRate;
      let increment = again ? earlier[Math.floor(random() * earlier.length)] : undefined;
      if (increment) {
        repeated++;
      } else {
        // Squaring the roll skews traffic towards the first objects: a few hot counters, a long tail.
        const object = objects[Math.floor(random() ** 2 * objects.length)];
        if (!object) throw new Error("counter object out of range");
        const fields = FIELDS[object.scope];
        const [field, largest] = fields[Math.floor(random() * fields.length)] ?? ["likes", 1];
        increment = {
          id: `${prefix}-inc-${unique++}`,
          scope: object.scope,
          key: object.key,
          field,
          delta: 1 + Math.floor(random() * largest),
        };
        object.expected.set(field, (object.expected.get(field) ?? 0) + increment.delta);
        hits.set(object, (hits.get(object) ?? 0) + 1);
      }
      batch.push(increment);
    }
    // Only earlier requests feed repeats: the brief's repeats are retries across requests.
    earlier.push(...batch);
    requests.push({ body: JSON.stringify({ increments: batch }), increments: batch.length });
    sent += batch.length;
  }
  const touched = objects.filter((object) => object.expected.size > 0);
  const hottest = [...hits].toSorted((a, b) => b[1] - a[1])[0]?.[0];
  if (!hottest) throw new Error("no increments planned");
  return {
    requests,
    sent,
    unique,
    repeated,
    objects: touched,
    counters: touched.reduce((sum, object) => sum + object.expected.size, 0),
    hottest,
  };
}

/** Concurrent senders; 429/503 are retried after `Retry-After` with the same body (same ids). */
async function sendIncrements(
  stack: Stack,
  plan: CounterPlan,
  clients: number,
  onProgress: (done: number, increments: number) => void,
): Promise<CounterSendStats> {
  const stats: CounterSendStats = {
    accepted: 0,
    statuses: new Map(),
    retries: 0,
    serverErrors: 0,
    failures: [],
    latenciesMs: [],
    ms: 0,
  };
  const started = Date.now();
  let cursor = 0;
  let done = 0;
  let increments = 0;
  const client = async () => {
    for (let index = cursor++; index < plan.requests.length; index = cursor++) {
      const request = plan.requests[index];
      if (!request) return;
      for (let attempt = 1; ; attempt++) {
        let wait: number;
        try {
          const answer = await stack.request("POST", "/v1/counters", { token: INGEST_KEY, rawBody: request.body });
          stats.statuses.set(answer.status, (stats.statuses.get(answer.status) ?? 0) + 1);
          stats.latenciesMs.push(answer.ms);
          if (answer.status >= 500) stats.serverErrors++;
          if (answer.status === 202) {
            stats.accepted += AcceptedSchema.parse(answer.body).accepted;
            break;
          }
          if (answer.status !== 429 && answer.status !== 503) {
            stats.failures.push(`request ${index}: ${answer.status} ${brief(answer.body)}`);
            break;
          }
          const seconds = Number(answer.headers.get("retry-after"));
          wait = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 250 * 2 ** attempt;
        } catch (error) {
          wait = 250 * 2 ** attempt;
          if (attempt >= 8) stats.failures.push(`request ${index}: ${String(error)}`);
        }
        if (attempt >= 8) {
          stats.failures.push(`request ${index}: gave up after ${attempt} attempts`);
          break;
        }
        stats.retries++;
        await sleep(Math.min(30_000, wait));
      }
      done++;
      increments += request.increments;
      onProgress(done, increments);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, clients) }, () => client()));
  stats.ms = Date.now() - started;
  return stats;
}

async function counterMetrics(stack: Stack): Promise<CounterMetrics> {
  return (await apiCall(stack, "getMetrics")).counters;
}

/** D1 `counters` against the model: how many counters match, and the first few that do not. */
async function compareD1(
  stack: Stack,
  plan: CounterPlan,
): Promise<{ matching: number; mismatches: string[]; unexpected: number }> {
  const rows = (await stack.queryD1("SELECT scope, key, field, value FROM counters")).map((row) =>
    CounterRowSchema.parse(row),
  );
  const stored = new Map(rows.map((row) => [`${objectKey(row.scope, row.key)}/${row.field}`, row.value]));
  let matching = 0;
  const mismatches: string[] = [];
  const wanted = new Set<string>();
  for (const object of plan.objects) {
    for (const [field, value] of object.expected) {
      const name = `${objectKey(object.scope, object.key)}/${field}`;
      wanted.add(name);
      const got = stored.get(name);
      if (got === value) matching++;
      else mismatches.push(`${name}: D1 ${got ?? "missing"}, expected ${value}`);
    }
  }
  const unexpected = [...stored.keys()].filter((name) => !wanted.has(name)).length;
  return { matching, mismatches, unexpected };
}

/** The API's answer for one counter object against the model (every field, none extra). */
async function compareGet(stack: Stack, object: CounterObject): Promise<string[]> {
  const answer = await apiCallAs(stack, INGEST_KEY, "getCounter", { params: { scope: object.scope, key: object.key } });
  const problems: string[] = [];
  const name = objectKey(object.scope, object.key);
  for (const [field, value] of object.expected) {
    const got = answer.values[field];
    if (got !== value) problems.push(`${name}/${field}: GET ${got ?? "missing"}, expected ${value}`);
  }
  for (const field of Object.keys(answer.values)) {
    if (!object.expected.has(field)) problems.push(`${name}/${field}: GET shows a field never incremented`);
  }
  return problems;
}

export function countersPhases(options: CountersOptions): Phase<DemoContext>[] {
  return [
    {
      name: "counters-send",
      title: `Send ${fmt.int(options.increments)} counter increments (${fmt.pct(options.repeatRate)} repeated ids)`,
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = planIncrements(options);
        state(ctx).plan = plan;
        console.log(
          `  ${fmt.int(plan.sent)} increments in ${plan.requests.length} requests, ${fmt.int(plan.unique)} unique ids over ${plan.counters} counters (${plan.objects.length} posts and users)`,
        );
        stack.mark("demo: counters send starts");
        const started = Date.now();
        const sent = await sendIncrements(stack, plan, options.clients, (done, increments) => {
          const seconds = Math.max(0.001, (Date.now() - started) / 1000);
          ctx.progress.update(
            `sending ${fmt.int(increments)}/${fmt.int(plan.sent)} increments · ${done}/${plan.requests.length} requests · ${fmt.int(increments / seconds)} increments/s`,
          );
        });
        stack.mark("demo: counters send done");
        state(ctx).sent = sent;
        state(ctx).sentAt = Date.now();
        ctx.progress.done(
          `sent ${fmt.int(plan.sent)} increments in ${fmt.s(sent.ms)} (${fmt.int(plan.sent / (sent.ms / 1000))} increments/s), p50 ${fmt.int(percentile(sent.latenciesMs, 50))} ms per request`,
        );
        ctx.report.set(COUNTERS, "increments sent", plan.sent);
        ctx.report.set(COUNTERS, "unique increment ids", plan.unique);
        ctx.report.set(COUNTERS, "repeated ids (across requests)", plan.repeated);
        ctx.report.set(COUNTERS, "requests (100–1000 increments each)", plan.requests.length);
        ctx.report.set(COUNTERS, "concurrent clients", options.clients);
        ctx.report.set(COUNTERS, "counters (scope · key · field)", plan.counters);
        ctx.report.set(COUNTERS, "accepted (sum of 202 `accepted`)", sent.accepted);
        ctx.report.set(COUNTERS, "HTTP answers", [...sent.statuses].map(([status, n]) => `${status}×${n}`).join(", "));
        ctx.report.set(
          TIMES,
          "counters send",
          `${fmt.s(sent.ms)} (${fmt.int(plan.sent / (sent.ms / 1000))} increments/s)`,
        );
        ctx.report.check(
          "counters: every increment accepted",
          sent.accepted === plan.sent,
          `${fmt.int(sent.accepted)} of ${fmt.int(plan.sent)} accepted`,
        );
        ctx.report.check("counters: no 5xx answers", sent.serverErrors === 0, `${sent.serverErrors} answers ≥ 500`);
        if (sent.failures.length > 0) {
          throw new Error(
            `${sent.failures.length} request(s) failed for good: ${sent.failures.slice(0, 3).join("; ")}`,
          );
        }
      },
    },
    {
      name: "counters-drain",
      title: "Wait until D1 `counters` equals the model",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = need(state(ctx).plan, "counter plan");
        const from = state(ctx).sentAt ?? Date.now();
        let d1 = { matching: 0, mismatches: [] as string[], unexpected: 0 };
        let metrics: CounterMetrics | undefined;
        let metricsAt = 0;
        // The hottest counter's GET includes deltas its shard still holds (read-your-writes), so it
        // can match before the flush reaches D1; how much earlier depends on when shards flush.
        let hotVisibleAt: number | undefined;
        await waitFor(
          stack,
          {
            timeoutMs: options.timeoutMs,
            intervalMs: 250,
            describe: () =>
              `${d1.matching} of ${plan.counters} counters match in D1 (${d1.mismatches.slice(0, 3).join("; ")}), ${metrics?.held ?? "?"} increments held in shards, ${metrics?.flush_failures ?? "?"} flush failures`,
          },
          async () => {
            if (hotVisibleAt === undefined && (await compareGet(stack, plan.hottest)).length === 0) {
              hotVisibleAt = Date.now();
            }
            d1 = await compareD1(stack, plan);
            const settled = d1.mismatches.length === 0 && d1.unexpected === 0;
            if (Date.now() - metricsAt >= 2_000 || settled) {
              metrics = await counterMetrics(stack);
              metricsAt = Date.now();
            }
            ctx.progress.update(
              `D1 matches ${d1.matching}/${plan.counters} counters · ${fmt.int(metrics?.held ?? 0)} increments held in shards · hot counter via GET ${hotVisibleAt === undefined ? "not yet" : `after ${fmt.s(hotVisibleAt - from)}`} · ${fmt.s(Date.now() - from)}`,
            );
            return settled && metrics?.held === 0 && hotVisibleAt !== undefined ? true : undefined;
          },
        );
        const allInD1 = Date.now();
        stack.mark("demo: counters all in D1");
        ctx.progress.done(
          `all ${plan.counters} counters equal the model in D1 ${fmt.s(allInD1 - from)} after the last 202; the hottest one via GET after ${fmt.s((hotVisibleAt ?? allInD1) - from)}`,
        );
        ctx.report.set(
          TIMES,
          "counters: last 202 → hottest counter right via GET",
          fmt.s((hotVisibleAt ?? allInD1) - from),
        );
        ctx.report.set(TIMES, "counters: last 202 → D1 equals the model", fmt.s(allInD1 - from));
      },
    },
    {
      name: "counters-verify",
      title: "Check every counter through the API and in D1",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = need(state(ctx).plan, "counter plan");
        // Every object once, from a few concurrent readers: a few hundred GETs, well inside the
        // ingest class's 600 a minute even with the telemetry and counter sends in the same window.
        const problems: string[] = [];
        let cursor = 0;
        let checked = 0;
        const reader = async () => {
          for (let object = plan.objects[cursor++]; object; object = plan.objects[cursor++]) {
            problems.push(...(await compareGet(stack, object)));
            checked += object.expected.size;
            ctx.progress.update(`GET checked ${checked}/${plan.counters} counters · ${problems.length} mismatches`);
          }
        };
        await Promise.all(Array.from({ length: 4 }, () => reader()));
        const d1 = await compareD1(stack, plan);
        const applied = await stack.countD1(
          `SELECT COUNT(*) AS n FROM counter_increments WHERE id LIKE 'demo-${options.seed}-inc-%'`,
        );
        const metrics = await counterMetrics(stack);
        const sum = plan.objects.reduce(
          (total, object) => total + [...object.expected.values()].reduce((a, b) => a + b, 0),
          0,
        );
        const d1Sum = CountSchema.parse(
          (await stack.queryD1("SELECT COALESCE(SUM(value), 0) AS n FROM counters"))[0] ?? { n: 0 },
        ).n;
        ctx.progress.done(
          `checked ${checked} counters via GET and ${d1.matching + d1.mismatches.length} in D1: ${problems.length + d1.mismatches.length + d1.unexpected} mismatches`,
        );
        const per1k = (n: number) => fmt.dec((n / plan.sent) * 1000, 2);
        ctx.report.set(COUNTERS, "checked via GET /v1/counters/:scope/:key", checked);
        ctx.report.set(COUNTERS, "checked in D1 `counters`", d1.matching + d1.mismatches.length);
        ctx.report.set(COUNTERS, "mismatches (GET + D1)", problems.length + d1.mismatches.length + d1.unexpected);
        ctx.report.set(COUNTERS, "sum of all counters (model / D1)", `${fmt.int(sum)} / ${fmt.int(d1Sum)}`);
        ctx.report.set(COUNTERS, "increment ids applied in D1 ledger", applied);
        ctx.report.set(COUNTERS, "D1 round trips per 1,000 increments sent", per1k(metrics.d1.round_trips));
        ctx.report.set(COUNTERS, "D1 statements per 1,000 increments sent", per1k(metrics.d1.statements));
        ctx.report.set(COUNTERS, "shard RPCs per 1,000 increments sent", per1k(metrics.shard_rpcs));
        ctx.report.check(
          "counters: GET equals the model",
          problems.length === 0 && checked === plan.counters,
          `${checked} counters checked, ${problems.length} mismatches${problems.length ? ` (e.g. ${problems.slice(0, 3).join("; ")})` : ""}`,
        );
        ctx.report.check(
          "counters: D1 equals the model",
          d1.mismatches.length === 0 && d1.unexpected === 0,
          `${d1.matching} of ${plan.counters} match, ${d1.mismatches.length} differ${d1.mismatches.length ? ` (e.g. ${d1.mismatches.slice(0, 3).join("; ")})` : ""}, ${d1.unexpected} unexpected rows`,
        );
        ctx.report.check(
          "counters: each increment id applied once",
          applied === plan.unique,
          `${fmt.int(applied)} ids in counter_increments, ${fmt.int(plan.unique)} unique ids sent`,
        );
        ctx.report.check(
          "counters: shards empty, no flush failures",
          metrics.held === 0 && metrics.flush_failures === 0,
          `${metrics.held} increments held, ${metrics.flush_failures} flush failures`,
        );
        console.log(
          `  ${per1k(metrics.d1.round_trips)} D1 round trips, ${per1k(metrics.shard_rpcs)} shard RPCs per 1,000 increments`,
        );
      },
    },
  ];
}
