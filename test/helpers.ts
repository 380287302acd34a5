/**
 * Shared helpers for the telemetry pipeline tests. They drive the real Worker (HTTP edge, queue
 * consumer, RuntimeEventShard, D1) and only observe it: nothing of ours is stubbed here.
 */
import {
  type MessageBatchMessage,
  type QueueResult,
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runInDurableObject,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import type { z } from "zod";
import { telemetryShardName } from "../durable/runtime-event-shard.do.ts";
import { type IngestError, type IngestValue, RuntimeEventShard } from "../durable/runtime-event-shard.do.ts";
import { ApiClient, type CallOutput } from "../lib/api-client.ts";
import { config } from "../lib/config.ts";
import { hashToShard } from "../lib/hash.ts";
import type { Result } from "../lib/result.ts";
import worker from "../index.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import { ErrorSchema, MetricsSchema } from "../schemas/http.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { QUEUES } from "../lib/queues.ts";

export const BASE_URL = "http://shipyard.test";
/** From vitest.config.ts (TEST_SECRETS). */
export const INGEST_KEY = "dev-ingest-key";
export const ADMIN_TOKEN = "dev-admin-token";
/** For `vi.waitUntil` on end-to-end effects: a queue batch waits up to 1 s, a flush 200 ms. */
export const WAIT = { timeout: 10_000, interval: 50 } as const;
/** Long enough that a held alarm never fires during a test; tests run it with runDurableObjectAlarm. */
const HELD_ALARM_MS = 10 * 60_000;

export type ErrorBody = z.infer<typeof ErrorSchema>;

/**
 * The typed API client (lib/api-client.ts) against the Worker under test, in this isolate, with
 * `token` (default: the admin token) for operations that need a credential.
 */
export function api(token: string = ADMIN_TOKEN): ApiClient {
  return new ApiClient({ baseUrl: BASE_URL, token, fetch: (request) => exports.default.fetch(request) });
}

/** A unique id for this test run (ids, project ids, Durable Object names). */
/** Runs an enforcement cycle through the admin API with `thresholdMs` and waits for it to complete. */
export async function runEnforcement(thresholdMs: number): Promise<CallOutput<"getEnforcementRun">> {
  const { run_id } = await api().call("runEnforcement", { body: { threshold_ms: thresholdMs } });
  let last: CallOutput<"getEnforcementRun"> | undefined;
  await vi.waitUntil(
    async () => {
      last = await api().call("getEnforcementRun", { params: { id: run_id } });
      return last.status === "complete" || last.status === "errored";
    },
    { timeout: 20_000, interval: 100 },
  );
  if (!last || last.status !== "complete") throw new Error(`enforcement run ended ${JSON.stringify(last)}`);
  return last;
}

export function uid(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

export function makeEvent(projectId: string, id: string, data: Record<string, unknown> = { n: 1 }): RuntimeEvent {
  return { id, project_id: projectId, type: "request", ts: 1_700_000_000_000, data };
}

/** `count` events of `projectId`, optionally with `dataBytes` of padding in `data`. */
export function makeEvents(projectId: string, count: number, options: { dataBytes?: number } = {}): RuntimeEvent[] {
  const pad = options.dataBytes === undefined ? undefined : "x".repeat(options.dataBytes);
  return Array.from({ length: count }, (_, i) =>
    makeEvent(projectId, `${projectId}-e${i}`, pad === undefined ? { i } : { i, pad }),
  );
}

/** Events whose ids all hash to telemetry shard `index` (`tag` keeps two such sets apart). */
export function eventsInShard(projectId: string, index: number, count: number, tag = ""): RuntimeEvent[] {
  const events: RuntimeEvent[] = [];
  for (let i = 0; events.length < count; i++) {
    const id = `${projectId}-${tag}s${index}-${i}`;
    if (hashToShard(id, shardCount()) === index) events.push(makeEvent(projectId, id, { i }));
  }
  return events;
}

export function shardCount(): number {
  return config(env).SHARD_COUNT;
}

/** The telemetry shard (Durable Object name) that owns event `id`. */
export function shardOf(id: string): string {
  return telemetryShardName(hashToShard(id, shardCount()));
}

export function shard(name: string): DurableObjectStub<RuntimeEventShard> {
  return env.RUNTIME_EVENT_SHARD.getByName(name);
}

/** `POST /v1/events` through the real Worker. `key: null` sends no Authorization header. */
export function postEvents(
  body: unknown,
  options: { key?: string | null; contentType?: string | null } = {},
): Promise<Response> {
  const headers = new Headers();
  const key = options.key === undefined ? INGEST_KEY : options.key;
  if (key !== null) headers.set("authorization", `Bearer ${key}`);
  const contentType = options.contentType === undefined ? "application/json" : options.contentType;
  if (contentType !== null) headers.set("content-type", contentType);
  return exports.default.fetch(`${BASE_URL}/v1/events`, {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof ReadableStream ? body : JSON.stringify(body),
  });
}

/**
 * The Worker isolate's ingest sends so far (`GET /v1/admin/metrics`, `telemetry.ingest`): how many
 * requests reached the queue sender, and the sends and messages that carried them.
 */
export async function ingestSends(): Promise<z.infer<typeof MetricsSchema>["telemetry"]["ingest"]> {
  const response = await exports.default.fetch(`${BASE_URL}/v1/admin/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`GET /v1/admin/metrics answered ${response.status}`);
  return MetricsSchema.parse(await response.json()).telemetry.ingest;
}

/** Reads and validates a contract error body (`{"error": {"code", "message", "details"?}}`). */
export async function readError(response: Response): Promise<ErrorBody> {
  return ErrorSchema.parse(await response.json());
}

/** Rows of `project_id` in D1 `runtime_events`. */
export async function countRows(projectId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM runtime_events WHERE project_id = ?")
    .bind(projectId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** Waits until D1 holds at least `expected` rows of `projectId`, then returns the count. */
export async function waitForRows(projectId: string, expected: number): Promise<number> {
  await vi.waitUntil(async () => (await countRows(projectId)) >= expected, WAIT);
  return countRows(projectId);
}

/** Queue messages (as `createMessageBatch` wants them) carrying one telemetry envelope each. */
export function telemetryMessages(groups: readonly RuntimeEvent[][], attempts = 1): MessageBatchMessage[] {
  return groups.map((events) => ({
    id: uid("msg"),
    timestamp: new Date(),
    attempts,
    body: envelope("telemetry.events", { events }),
  }));
}

/** The same messages, delivered again (as the queue does for retried messages). */
export function redeliver(messages: readonly MessageBatchMessage[], ids: readonly string[]): MessageBatchMessage[] {
  return messages.filter((message) => ids.includes(message.id)).map((m) => ({ ...m, attempts: m.attempts + 1 }));
}

/**
 * Wraps a `createMessageBatch` batch so that every `retry` records its options (vitest-plugin 1.5
 * drops `delaySeconds` from `getQueueResult`), and, with `crashAtAck`, the ack of that message
 * throws as if the invocation died there. Everything else goes to the real batch.
 */
export function observedBatch(
  batch: MessageBatch,
  delays: Map<string, number | undefined>,
  crashAtAck?: number,
): MessageBatch {
  return {
    queue: batch.queue,
    metadata: batch.metadata,
    messages: batch.messages.map((message, index) => ({
      id: message.id,
      timestamp: message.timestamp,
      body: message.body,
      attempts: message.attempts,
      ack: () => {
        if (index === crashAtAck) throw new Error("invocation crashed");
        message.ack();
      },
      retry: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        message.retry(options);
      },
    })),
    ackAll: () => batch.ackAll(),
    retryAll: (options?: QueueRetryOptions) => batch.retryAll(options),
  };
}

/**
 * Runs the Worker's queue handler on a batch of `queue` and returns what it acked and retried,
 * with each retry's `delaySeconds`.
 */
export async function deliver(
  messages: MessageBatchMessage[],
  targetEnv: Env = env,
  queue: string = QUEUES.telemetry.name,
): Promise<QueueResult> {
  const batch = createMessageBatch(queue, messages);
  const ctx = createExecutionContext();
  const delays = new Map<string, number | undefined>();
  await worker.queue(observedBatch(batch, delays), targetEnv);
  const result = await getQueueResult(batch, ctx);
  return {
    ...result,
    retryMessages: result.retryMessages.map(({ msgId }) => ({ msgId, delaySeconds: delays.get(msgId) })),
  };
}

/** Spies (calling through) on the telemetry queue producer shared by the tests and the Worker. */
export function spyOnTelemetrySends() {
  return {
    sendBatch: vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch"),
    send: vi.spyOn(env.TELEMETRY_QUEUE, "send"),
  };
}

/** What a successful `sendBatch` resolves to, for spies that capture instead of sending. */
export const SENT: QueueSendBatchResponse = { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };

/** How many of `ids` a shard has in its dedupe ledger (`seen`) and in its buffer (`buffered_events`). */
export async function shardHolds(name: string, ids: readonly string[]): Promise<{ seen: number; buffered: number }> {
  return runInDurableObject(shard(name), (_instance, state) => {
    const count = (table: string) =>
      state.storage.sql
        .exec<{ n: number }>(
          `SELECT COUNT(*) AS n FROM ${table} WHERE id IN (SELECT value FROM json_each(?))`,
          JSON.stringify(ids),
        )
        .one().n;
    return { seen: count("seen"), buffered: count("buffered_events") };
  });
}

/** `shardHolds` summed over the telemetry shards owning `ids`. */
export async function shardsHold(ids: readonly string[]): Promise<{ seen: number; buffered: number }> {
  const byShard = Map.groupBy(ids, shardOf);
  const totals = { seen: 0, buffered: 0 };
  for (const [name, group] of byShard) {
    const held = await shardHolds(name, group);
    totals.seen += held.seen;
    totals.buffered += held.buffered;
  }
  return totals;
}

/**
 * Ingests into a shard and then holds its alarm far in the future, in one Durable Object call, so
 * the 200 ms test flush delay cannot race the test: the test runs the alarm itself.
 */
export function ingestHeld(
  stub: DurableObjectStub<RuntimeEventShard>,
  events: RuntimeEvent[],
): Promise<Result<IngestValue, IngestError>> {
  return runInDurableObject(stub, async (instance, state) => {
    const result = await instance.ingest(events);
    await state.storage.setAlarm(Date.now() + HELD_ALARM_MS);
    return result;
  });
}

/** Structured log lines (lib/log.ts) with `code` among a console spy's calls. */
export function logLines(spy: { mock: { calls: unknown[][] } }, code: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const [first] of spy.mock.calls) {
    if (typeof first !== "string" || !first.startsWith("{")) continue;
    const parsed: unknown = JSON.parse(first);
    if (typeof parsed === "object" && parsed !== null && "code" in parsed && parsed.code === code) {
      lines.push({ ...parsed });
    }
  }
  return lines;
}

/**
 * Observes (calling through) every `RuntimeEventShard.ingest` the Worker makes. `totals` sums the
 * shards' replies over the calls that carried only `projectId`'s events; `waitFor` waits until
 * they have answered for `events` events (stored or duplicate) and returns the totals.
 */
export function observeShardIngests() {
  const spy = vi.spyOn(RuntimeEventShard.prototype, "ingest");
  const totals = (projectId: string) => {
    const sums = { calls: 0, stored: 0, duplicates: 0, failed: 0 };
    spy.mock.calls.forEach(([events], index) => {
      if (!events.every((event) => event.project_id === projectId)) return;
      const settled = spy.mock.settledResults[index];
      if (settled?.type !== "fulfilled") return;
      sums.calls++;
      if (settled.value.ok) {
        sums.stored += settled.value.value.stored;
        sums.duplicates += settled.value.value.duplicates;
      } else sums.failed++;
    });
    return sums;
  };
  const waitFor = async (projectId: string, events: number) => {
    await vi.waitUntil(() => {
      const sums = totals(projectId);
      return sums.stored + sums.duplicates >= events;
    }, WAIT);
    return totals(projectId);
  };
  return { totals, waitFor };
}
