/**
 * The small-request part of `npm run bench` (`--only small`): what one ingest request costs
 * against the cheapest request the same stack serves. One fresh stack, the same client code for
 * both: `clients` concurrent loops of `GET /v1/health`, then of `POST /v1/events` carrying one
 * event each, in alternating phases (health, events, health, events …). Before each health phase
 * the queue backlog of the events phase before it is drained (the consumer shares the workerd
 * thread locally), so health is measured on an idle pipeline and ingest with its own consumer
 * running: the ratio is pessimistic for ingest, never flattering.
 *
 * Then every event answered 202 must be a row in D1 exactly once, and no event of a request
 * answered otherwise may be: lost = accepted ids missing from D1, unexpected = ids in D1 that
 * were never acknowledged. Rate limits are lifted (the limiter still runs on every request: its
 * cost is part of what is measured, refusals are not).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { type ProfileSummary, Profiler, summarize, writeProfile } from "../lib/profile.ts";
import { fmt } from "../lib/report.ts";
import { ADMIN_TOKEN, INGEST_KEY, type Stack, machine, startStack } from "../lib/stack.ts";
import { EventFactory, percentile } from "../lib/telemetry.ts";
import { ROOT } from "../lib/wrangler.ts";
import { type BenchOptions, type CpuSummary, UNLIMITED, cpuSummary, stackEnv } from "./common.ts";

export interface SmallOptions {
  /** Concurrent clients in every phase (the issue asks for ≥ 32). */
  clients: number;
  /** Length of one phase; each kind runs `rounds` phases. */
  phaseMs: number;
  rounds: number;
}

export interface PhaseRate {
  requests: number;
  ms: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** Answers by status. */
  statuses: Record<string, number>;
  cpu: CpuSummary | null;
}

export interface SmallResult {
  clients: number;
  rounds: number;
  phaseMs: number;
  health: PhaseRate;
  events: PhaseRate;
  /** Per round, so the spread shows how noisy the machine was. */
  perRound: { health: number; events: number }[];
  /** events requests/s ÷ health requests/s over all rounds. */
  ratio: number;
  accepted: number;
  stored: number;
  lost: number;
  unexpected: number;
  /** The limiter per rate-limited request: syncs to its shards (Durable Object calls) and SQLite rows written. */
  limiter: { decisions: number; syncsPerRequest: number; rowsWrittenPerRequest: number };
  /** The ingest requests' queue sends over the measured phases (null: a worker from before they were counted). */
  sends: IngestSends | null;
  profile: ProfileSummary | null;
  log: string;
  error?: string;
}

/** The bench's floor: small-request ingest at ≥ 0.7× the health rate (issue 15). */
export const SMALL_FLOOR_RATIO = 0.7;

// `decisions` and `syncs` came with issue 15; a worker from before reports neither (0 here), so
// the arm also runs against older commits (for before/after comparisons).
const LimiterMetricsSchema = z.looseObject({
  rate_limits: z.looseObject({
    rows_written: z.number(),
    decisions: z.number().default(0),
    syncs: z.number().default(0),
  }),
  // Also issue 15 (lib/send-coalescer.ts); absent before it.
  telemetry: z.looseObject({
    ingest: z.looseObject({ requests: z.number(), sends: z.number(), messages: z.number() }).optional(),
  }),
});

type IngestSends = { requests: number; sends: number; messages: number };

/** Functions whose inclusive time the profile reports (the per-request path). */
const PROFILED_FUNCTIONS = ["postEvents", "getHealth", "authenticate", "checkRateLimit", "readJson", "sendSized"];

/**
 * The limiter's figures: decisions and syncs are the worker isolate's own (it lives for the whole
 * run); rows written are the shards', which restart from 0 if the runtime evicts an idle shard
 * (the health phases leave it idle), so that figure is a lower bound.
 */
async function limiterMetrics(
  stack: Stack,
): Promise<{ decisions: number; syncs: number; rowsWritten: number; ingest: IngestSends | null }> {
  const answer = await stack.request("GET", "/v1/admin/metrics", { token: ADMIN_TOKEN });
  const { rate_limits: limits, telemetry } = LimiterMetricsSchema.parse(answer.body);
  return {
    decisions: limits.decisions,
    syncs: limits.syncs,
    rowsWritten: limits.rows_written,
    ingest: telemetry.ingest ?? null,
  };
}

interface Phase {
  requests: number;
  latencies: number[];
  statuses: Map<string, number>;
}

/**
 * `clients` loops sending `next()` until `ms` have passed. Lean on purpose (no JSON parsing of
 * 2xx bodies beyond what the check needs), and the same for both kinds, so the client's own cost
 * is the same on both sides of the ratio.
 */
async function runPhase(
  stack: Stack,
  clients: number,
  ms: number,
  next: () => { init: RequestInit; path: string; onAnswer?: (status: number) => void },
): Promise<Phase> {
  const phase: Phase = { requests: 0, latencies: [], statuses: new Map() };
  const deadline = Date.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < deadline) {
        const { init, path: pathname, onAnswer } = next();
        const started = performance.now();
        let status: string;
        try {
          const response = await fetch(`${stack.url}${pathname}`, init);
          await response.arrayBuffer();
          status = String(response.status);
          onAnswer?.(response.status);
        } catch (error) {
          status = `network ${error instanceof Error ? error.message : String(error)}`;
        }
        phase.latencies.push(performance.now() - started);
        phase.requests++;
        phase.statuses.set(status, (phase.statuses.get(status) ?? 0) + 1);
      }
    }),
  );
  return phase;
}

function merge(phases: readonly Phase[], ms: number, cpu: CpuSummary | null): PhaseRate {
  const requests = phases.reduce((sum, phase) => sum + phase.requests, 0);
  const latencies = phases.flatMap((phase) => phase.latencies);
  const statuses: Record<string, number> = {};
  for (const phase of phases) {
    for (const [status, n] of phase.statuses) statuses[status] = (statuses[status] ?? 0) + n;
  }
  return {
    requests,
    ms,
    perSecond: requests / (ms / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    statuses,
    cpu,
  };
}

function health() {
  return { path: "/v1/health", init: { method: "GET" } };
}

/** The mean of CPU summaries of several phases of one kind. */
function averageCpu(list: readonly CpuSummary[]): CpuSummary | null {
  const [first] = list;
  if (!first) return null;
  const mean = (pick: (cpu: CpuSummary) => number) => list.reduce((sum, cpu) => sum + pick(cpu), 0) / list.length;
  return {
    ...first,
    cores: mean((cpu) => cpu.cores),
    busiestCores: mean((cpu) => cpu.busiestCores),
    otherCores: mean((cpu) => cpu.otherCores),
    clientCores: mean((cpu) => cpu.clientCores),
    cpuPressure: first.cpuPressure === null ? null : mean((cpu) => cpu.cpuPressure ?? 0),
  };
}

async function waitForRows(stack: Stack, prefix: string, target: number, options: BenchOptions): Promise<number> {
  const deadline = Date.now() + 120_000;
  const sql = `SELECT COUNT(*) AS n FROM runtime_events WHERE id >= '${prefix}' AND id < '${prefix}~'`;
  for (;;) {
    const rows = await stack.countD1(sql);
    if (rows >= target || Date.now() > deadline) return rows;
    options.progress.update(`[small] draining the queue: ${fmt.int(rows)}/${fmt.int(target)} events in D1`);
    await sleep(250);
  }
}

/** Runs the small-request part on its own stack; the stack is stopped whatever happens. */
export async function runSmall(small: SmallOptions, options: BenchOptions): Promise<SmallResult> {
  const { progress } = options;
  console.log(
    `\n▶ small requests: GET /v1/health against POST /v1/events with 1 event, ${small.clients} clients, ${small.rounds} × ${fmt.s(small.phaseMs)} phases each`,
  );
  const stack = await startStack({
    name: "bench-small",
    vars: { RATE_LIMITS: UNLIMITED, ...options.extraVars },
    env: stackEnv(options),
  });
  try {
    const prefix = `small-${options.stamp}-`;
    const factory = new EventFactory(15, prefix.slice(0, -1));
    const acceptedIds = new Set<string>();
    const attempted = new Set<string>();
    const event = () => {
      const body = factory.next();
      attempted.add(body.id);
      return {
        path: "/v1/events",
        init: {
          method: "POST",
          headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ events: [body] }),
        },
        onAnswer: (status: number) => {
          if (status === 202) acceptedIds.add(body.id);
        },
      };
    };

    // Warm-up: isolates, the limiter's shard, the telemetry shards and D1. Not measured.
    stack.mark("bench small: warm-up");
    await runPhase(stack, small.clients, 2_000, health);
    await runPhase(stack, small.clients, 2_000, event);
    await waitForRows(stack, prefix, acceptedIds.size, options);
    progress.done(`warm-up: ${fmt.int(acceptedIds.size)} small requests accepted and stored`);

    const limiterBefore = await limiterMetrics(stack);
    let profiler: Profiler | null = null;
    if (options.profile) {
      profiler = await Profiler.connect(stack.inspectorPort);
      await profiler.start();
    }
    const healthPhases: Phase[] = [];
    const eventPhases: Phase[] = [];
    const perRound: { health: number; events: number }[] = [];
    const cpuOf = { health: [] as CpuSummary[], events: [] as CpuSummary[] };
    for (let round = 1; round <= small.rounds; round++) {
      for (const kind of ["health", "events"] as const) {
        if (kind === "health") await waitForRows(stack, prefix, acceptedIds.size, options);
        progress.update(`[small] round ${round}/${small.rounds}: ${kind} for ${fmt.s(small.phaseMs)}`);
        stack.mark(`bench small: round ${round} ${kind}`);
        const stackBefore = stack.cpu();
        const machineBefore = machine();
        const phase = await runPhase(stack, small.clients, small.phaseMs, kind === "health" ? health : event);
        cpuOf[kind].push(cpuSummary(stackBefore, stack.cpu(), machineBefore, machine()));
        (kind === "health" ? healthPhases : eventPhases).push(phase);
        if (kind === "events") {
          const last = healthPhases.at(-1);
          perRound.push({
            health: (last?.requests ?? 0) / (small.phaseMs / 1000),
            events: phase.requests / (small.phaseMs / 1000),
          });
          progress.done(
            `round ${round}: health ${fmt.int(perRound.at(-1)?.health ?? 0)} requests/s, events ${fmt.int(perRound.at(-1)?.events ?? 0)} requests/s`,
          );
        }
      }
    }
    let profile: ProfileSummary | null = null;
    if (profiler) {
      const raw = await profiler.stop();
      profiler.close();
      const file = path.join(ROOT, "bench", "out", `${options.stamp}-small.cpuprofile`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeProfile(file, raw);
      profile = summarize(raw, PROFILED_FUNCTIONS, 15);
      progress.done(`CPU profile of the worker isolate: ${path.relative(process.cwd(), file)}`);
    }
    const limiterAfter = await limiterMetrics(stack);
    const stored = await waitForRows(stack, prefix, acceptedIds.size, options);
    const rows = await stack.queryD1(`SELECT id FROM runtime_events WHERE id >= '${prefix}' AND id < '${prefix}~'`);
    const storedIds = new Set(rows.map((row) => String(row.id)));
    let lost = 0;
    for (const id of acceptedIds) if (!storedIds.has(id)) lost++;
    let unexpected = 0;
    for (const id of storedIds) if (!acceptedIds.has(id)) unexpected++;

    const total = small.rounds * small.phaseMs;
    const healthRate = merge(healthPhases, total, averageCpu(cpuOf.health));
    const eventsRate = merge(eventPhases, total, averageCpu(cpuOf.events));
    const result: SmallResult = {
      clients: small.clients,
      rounds: small.rounds,
      phaseMs: small.phaseMs,
      health: healthRate,
      events: eventsRate,
      perRound,
      ratio: healthRate.perSecond > 0 ? eventsRate.perSecond / healthRate.perSecond : 0,
      accepted: acceptedIds.size,
      stored,
      lost,
      unexpected,
      limiter: (() => {
        const decisions = limiterAfter.decisions - limiterBefore.decisions;
        return {
          decisions,
          syncsPerRequest: (limiterAfter.syncs - limiterBefore.syncs) / Math.max(1, decisions),
          rowsWrittenPerRequest:
            Math.max(0, limiterAfter.rowsWritten - limiterBefore.rowsWritten) / Math.max(1, decisions),
        };
      })(),
      sends:
        limiterAfter.ingest && limiterBefore.ingest
          ? {
              requests: limiterAfter.ingest.requests - limiterBefore.ingest.requests,
              sends: limiterAfter.ingest.sends - limiterBefore.ingest.sends,
              messages: limiterAfter.ingest.messages - limiterBefore.ingest.messages,
            }
          : null,
      profile,
      log: stack.logPath,
    };
    if (lost > 0 || unexpected > 0) result.error = `${lost} accepted events lost, ${unexpected} stored without a 202`;
    else if (eventsRate.statuses["202"] !== eventsRate.requests)
      result.error = `not every ingest request was accepted: ${JSON.stringify(eventsRate.statuses)}`;
    progress.done(
      `[small] health ${fmt.int(healthRate.perSecond)} requests/s · events ${fmt.int(eventsRate.perSecond)} requests/s · ratio ${fmt.dec(result.ratio, 2)} · ${fmt.int(acceptedIds.size)} accepted, ${fmt.int(stored)} in D1, lost ${lost}, unexpected ${unexpected} (attempted ${fmt.int(attempted.size)})`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}
