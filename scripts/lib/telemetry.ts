/**
 * Synthetic runtime telemetry for the demo, the benchmark and load runs: a seeded generator of
 * realistic events, request planning (sizes, repeated ids), and concurrent senders that honour
 * 429/503 `Retry-After` and retry with the same ids, as a real producer must.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { INGEST_KEY, type Stack } from "./stack.ts";

const AcceptedSchema = z.looseObject({ accepted: z.number() });

export interface RuntimeEvent {
  id: string;
  project_id: string;
  type: string;
  ts: number;
  data: Record<string, unknown>;
}

/** mulberry32: small, fast, seeded; the same seed gives the same run. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error("pick from an empty list");
  return item;
}

function weighted<T>(random: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((sum, [, weight]) => sum + weight, 0);
  let roll = random() * total;
  for (const [item, weight] of items) {
    roll -= weight;
    if (roll < 0) return item;
  }
  const last = items.at(-1);
  if (!last) throw new Error("weighted pick from an empty list");
  return last[0];
}

/** A handful of tenants with different traffic shares, like a real platform. */
export const PROJECTS = [
  ["acme-storefront", 40],
  ["globex-api", 25],
  ["initech-cron", 10],
  ["umbrella-chat", 15],
  ["hooli-edge", 10],
] as const;

export const EVENT_TYPES = [
  ["request", 70],
  ["exception", 5],
  ["log", 15],
  ["scheduled", 3],
  ["do.alarm", 7],
] as const;

const COLOS = ["AMS", "FRA", "LHR", "CDG", "IAD", "SJC", "NRT", "SIN", "GRU", "SYD"];
const PATHS = ["/", "/api/cart", "/api/items/:id", "/login", "/checkout", "/ws", "/static/app.js", "/healthz"];
const METHODS = [
  ["GET", 75],
  ["POST", 20],
  ["DELETE", 5],
] as const;
const ERRORS = [
  "TypeError: cannot read properties of undefined",
  "Error: upstream timeout",
  "RangeError: invalid date",
];

/** Generates events with ids `<prefix>-<n>`, timestamps in the last minute, realistic `data`. */
export class EventFactory {
  readonly #random: () => number;
  readonly #prefix: string;
  readonly #now: number;
  #next = 0;

  constructor(seed: number, prefix: string, now = Date.now()) {
    this.#random = rng(seed);
    this.#prefix = prefix;
    this.#now = now;
  }

  next(): RuntimeEvent {
    const random = this.#random;
    const n = this.#next++;
    const project = weighted(random, PROJECTS);
    const type = weighted(random, EVENT_TYPES);
    const ts = this.#now - Math.floor(random() * 60_000);
    const colo = pick(random, COLOS);
    let data: Record<string, unknown>;
    switch (type) {
      case "request":
        data = {
          method: weighted(random, METHODS),
          path: pick(random, PATHS),
          status: weighted(random, [
            [200, 85],
            [304, 6],
            [404, 5],
            [500, 4],
          ]),
          duration_ms: Math.round(2 + random() * random() * 800),
          cpu_ms: Math.round(random() * 30 * 10) / 10,
          colo,
        };
        break;
      case "exception":
        data = {
          message: pick(random, ERRORS),
          path: pick(random, PATHS),
          stack_hash: Math.floor(random() * 1e9).toString(16),
          colo,
        };
        break;
      case "log":
        data = {
          level: pick(random, ["debug", "info", "warn"]),
          message: `handled job ${Math.floor(random() * 1e6)}`,
          colo,
        };
        break;
      case "scheduled":
        data = {
          cron: pick(random, ["*/5 * * * *", "0 * * * *"]),
          outcome: random() < 0.95 ? "ok" : "exception",
          duration_ms: Math.round(random() * 4000),
        };
        break;
      case "do.alarm":
        data = {
          class: pick(random, ["Room", "Counter", "Session"]),
          object: Math.floor(random() * 5000).toString(16),
          wall_ms: Math.round(random() * 2000),
          colo,
        };
        break;
    }
    return { id: `${this.#prefix}-${n}`, project_id: project, type, ts, data };
  }
}

/** One POST /v1/events body, pre-serialised so sending measures the service, not JSON.stringify. */
export interface PlannedRequest {
  body: string;
  events: number;
}

export function toRequest(events: readonly RuntimeEvent[]): PlannedRequest {
  return { body: JSON.stringify({ events }), events: events.length };
}

export interface TrafficPlan {
  requests: PlannedRequest[];
  sent: number;
  /** Distinct ids across the plan: what D1 must hold afterwards. */
  uniqueIds: Set<string>;
  repeatedWithinRequest: number;
  repeatedAcrossRequests: number;
  byProject: Map<string, number>;
  byType: Map<string, number>;
}

/**
 * Plans `total` events in requests of `minBatch`..`maxBatch` events, where a share `repeatRate` of
 * them repeat an id already planned: `withinShare` of the repeats an id from the same request
 * (a client that sends a buffered event twice), the rest an id from an earlier request (a client
 * retrying after a timeout, a redelivery). A repeat is the identical event, as a retry would be.
 */
export function planTraffic(options: {
  seed: number;
  prefix: string;
  total: number;
  repeatRate: number;
  withinShare: number;
  minBatch: number;
  maxBatch: number;
}): TrafficPlan {
  const random = rng(options.seed ^ 0x9e3779b9);
  const factory = new EventFactory(options.seed, options.prefix);
  const earlier: RuntimeEvent[] = [];
  const plan: TrafficPlan = {
    requests: [],
    sent: 0,
    uniqueIds: new Set(),
    repeatedWithinRequest: 0,
    repeatedAcrossRequests: 0,
    byProject: new Map(),
    byType: new Map(),
  };
  while (plan.sent < options.total) {
    const size = Math.min(
      options.total - plan.sent,
      options.minBatch + Math.floor(random() * (options.maxBatch - options.minBatch + 1)),
    );
    const batch: RuntimeEvent[] = [];
    for (let i = 0; i < size; i++) {
      let event: RuntimeEvent | undefined;
      if (random() < options.repeatRate) {
        const within = random() < options.withinShare;
        if (within && batch.length > 0) {
          event = pick(random, batch);
          plan.repeatedWithinRequest++;
        } else if (earlier.length > 0) {
          event = pick(random, earlier);
          plan.repeatedAcrossRequests++;
        }
      }
      if (!event) {
        event = factory.next();
        plan.uniqueIds.add(event.id);
        plan.byProject.set(event.project_id, (plan.byProject.get(event.project_id) ?? 0) + 1);
        plan.byType.set(event.type, (plan.byType.get(event.type) ?? 0) + 1);
      }
      batch.push(event);
    }
    earlier.push(...batch);
    plan.requests.push(toRequest(batch));
    plan.sent += batch.length;
  }
  return plan;
}

/** `count` unique events in requests of `batch` events each (the benchmark's traffic). */
export function uniqueRequests(seed: number, prefix: string, count: number, batch = 1000): PlannedRequest[] {
  const factory = new EventFactory(seed, prefix);
  const requests: PlannedRequest[] = [];
  for (let done = 0; done < count; done += batch) {
    const events = Array.from({ length: Math.min(batch, count - done) }, () => factory.next());
    requests.push(toRequest(events));
  }
  return requests;
}

export interface SendStats {
  requests: number;
  /** Events in requests answered 202. */
  events: number;
  /** Sum of `accepted` over 202 answers. */
  accepted: number;
  /** Answers by status, including the ones that were retried. */
  statuses: Map<number, number>;
  retries: number;
  /** Any 5xx answer, even if a retry then succeeded. */
  serverErrors: number;
  networkErrors: number;
  /** Requests given up on (4xx other than 429, or retries exhausted), with why. */
  failures: string[];
  firstSendAt: number;
  lastAnswerAt: number;
  latenciesMs: number[];
  /** When each request (by index in the plan) was answered 202 (epoch ms; undefined if never). */
  acceptedAt: number[];
}

export interface SendOptions {
  clients: number;
  /** Attempts per request before giving up (default 8). */
  maxAttempts?: number;
  /** Called after every answered request. */
  onProgress?: (stats: SendStats) => void;
}

function retryAfterMs(headers: Headers, attempt: number): number {
  const header = Number(headers.get("retry-after"));
  const base = Number.isFinite(header) && header > 0 ? header * 1000 : 250 * 2 ** attempt;
  return Math.min(30_000, base);
}

/**
 * Sends planned requests with `clients` concurrent clients, each taking the next request from a
 * shared cursor. 429 and 503 are retried after `Retry-After` with the same body (same ids), as the
 * contract asks of producers; network errors are retried with backoff; other answers are final.
 */
export async function sendRequests(
  stack: Stack,
  requests: readonly PlannedRequest[],
  options: SendOptions,
): Promise<SendStats> {
  const stats: SendStats = {
    requests: 0,
    events: 0,
    accepted: 0,
    statuses: new Map(),
    retries: 0,
    serverErrors: 0,
    networkErrors: 0,
    failures: [],
    firstSendAt: 0,
    lastAnswerAt: 0,
    latenciesMs: [],
    acceptedAt: [],
  };
  const maxAttempts = options.maxAttempts ?? 8;
  let cursor = 0;
  const client = async () => {
    for (;;) {
      const index = cursor++;
      const request = requests[index];
      if (!request) return;
      for (let attempt = 1; ; attempt++) {
        if (stats.firstSendAt === 0) stats.firstSendAt = Date.now();
        let status = 0;
        let wait = 0;
        try {
          const answer = await stack.request("POST", "/v1/events", { token: INGEST_KEY, rawBody: request.body });
          status = answer.status;
          stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
          stats.latenciesMs.push(answer.ms);
          if (status >= 500) stats.serverErrors++;
          if (status === 202) {
            stats.acceptedAt[index] = Date.now();
            stats.events += request.events;
            stats.accepted += AcceptedSchema.parse(answer.body).accepted;
            break;
          }
          if (status !== 429 && status !== 503) {
            stats.failures.push(`request ${index}: ${status} ${JSON.stringify(answer.body).slice(0, 300)}`);
            break;
          }
          wait = retryAfterMs(answer.headers, attempt);
        } catch (error) {
          stats.networkErrors++;
          wait = Math.min(10_000, 250 * 2 ** attempt);
          if (attempt >= maxAttempts) stats.failures.push(`request ${index}: ${String(error)}`);
        }
        if (attempt >= maxAttempts) {
          if (status !== 0) stats.failures.push(`request ${index}: gave up after ${attempt} attempts (last ${status})`);
          break;
        }
        stats.retries++;
        await sleep(wait);
      }
      stats.requests++;
      stats.lastAnswerAt = Date.now();
      options.onProgress?.(stats);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.clients) }, () => client()));
  return stats;
}

/** The p-th percentile (0..100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = values.toSorted((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}
