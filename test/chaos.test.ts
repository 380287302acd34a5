/**
 * RELIABILITY.md row 18: a seeded, randomized end-to-end run mixing the faults of the matrix,
 * then a drain, then lost = 0, duplicated = 0, unexpected = 0 against a model of what the client
 * was told was accepted.
 *
 * Each seed alternates two kinds of phase, chosen and sized by a PRNG seeded with it:
 *  - traffic, through the real edge and the real queues: new events and increments (positive
 *    deltas, repeated ids), client retries of whole requests (a lost 2xx), queue sends failing
 *    (503 + Retry-After, then the client's retry), poison put on a queue with the on-call send;
 *  - faults, where a fault must hit a specific batch: the edge accepts requests whose messages the
 *    test holds (as the queue would), then plays the queue itself, delivering them to the real
 *    consumer while a shard RPC fails (plainly or overloaded), a shard crashes inside its write,
 *    the invocation dies while acking, D1 refuses flushes for a while, a flush crashes between the
 *    D1 commit and the buffer delete, shards are evicted or every object aborted; retried and
 *    unacked messages are redelivered, acked ones sometimes delivered again.
 * Between phases the queues are let go idle (every accepted id is in its shard's ledger, every
 * poison message archived), so an armed fault hits only the batch it was meant for. The drain
 * then disarms everything and flushes every shard.
 *
 * A failing seed names itself and the trace of what it did; the same seed replays the same run.
 */
import {
  type MessageBatchMessage,
  abortAllDurableObjects,
  createExecutionContext,
  createMessageBatch,
  evictDurableObject,
  getQueueResult,
  runInDurableObject,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { counterShard, counterShardName, counterShardOf } from "../durable/counter-shard.do.ts";
import worker from "../index.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import type { Increment } from "../schemas/counter.schema.ts";
import {
  CounterIncrementsEnvelopeSchema,
  TelemetryEventsEnvelopeSchema,
  envelope,
} from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import {
  ADMIN_TOKEN,
  BASE_URL,
  INGEST_KEY,
  SENT,
  makeEvent,
  observedBatch,
  shard,
  shardCount,
  shardOf,
  uid,
} from "./helpers.ts";
import { QUEUES } from "../lib/queues.ts";

const SEEDS = [1, 2, 3, 4, 5];
/** Traffic phases per seed; each is followed by a fault phase. */
const ROUNDS = 3;
const IDLE = { timeout: 15_000, interval: 100 } as const;

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG (mulberry32): the seed alone decides every choice of the run.

function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => {
      const item = items[int(0, items.length - 1)];
      if (item === undefined) throw new Error("pick from an empty list");
      return item;
    },
    /** A random subset of `items` of about `share` of them. */
    some: <T>(items: readonly T[], share: number): T[] => items.filter(() => next() < share),
  };
}
type Rng = ReturnType<typeof prng>;

// ---------------------------------------------------------------------------------------------
// The queues as the edge sees them: through to the real queue, held by the test, or failing.

type Held = MessageBatchMessage[];

function controlQueues() {
  const held = new Map<string, Held>([
    [QUEUES.telemetry.name, []],
    [QUEUES.counters.name, []],
  ]);
  const control = { hold: false, failNext: 0, held };
  for (const [binding, name] of [
    ["TELEMETRY_QUEUE", QUEUES.telemetry.name],
    ["COUNTERS_QUEUE", QUEUES.counters.name],
  ] as const) {
    const queue = env[binding];
    const real = queue.sendBatch.bind(queue);
    vi.spyOn(queue, "sendBatch").mockImplementation(async (messages, options) => {
      if (control.failNext > 0) {
        control.failNext--;
        throw new Error("Queue send failed: 503 Service Unavailable");
      }
      if (!control.hold) return real(messages, options);
      for (const message of messages) {
        held.get(name)?.push({ id: uid("msg"), timestamp: new Date(), attempts: 1, body: message.body });
      }
      return SENT;
    });
  }
  /** The messages held for `queue` since the last take. */
  const take = (queue: string): Held => held.get(queue)?.splice(0) ?? [];
  return { control, take };
}

// ---------------------------------------------------------------------------------------------
// The model: what the client was told was accepted.

interface Run {
  seed: number;
  rng: Rng;
  projects: string[];
  keyPrefix: string;
  /** Accepted events by id (a 202 answered a request carrying them). */
  events: Map<string, RuntimeEvent>;
  /** Accepted increments by id. */
  increments: Map<string, Increment>;
  /** Ids put on a queue by the test in poison messages (never valid, never to be stored). */
  poisonIds: Set<string>;
  poisonMessages: number;
  /** Accepted ids already seen in their shard's ledger. */
  delivered: Set<string>;
  trace: string[];
  /** The queues once failed to go idle: later waits are skipped, the audit tells what is missing. */
  stuck: boolean;
  queues: ReturnType<typeof controlQueues>;
  counter: number;
}

function newRun(seed: number): Run {
  const tag = crypto.randomUUID().slice(0, 8);
  return {
    seed,
    rng: prng(seed),
    projects: [`chaos-s${seed}-${tag}-a`, `chaos-s${seed}-${tag}-b`],
    keyPrefix: `chaos-s${seed}-${tag}/`,
    events: new Map(),
    increments: new Map(),
    poisonIds: new Set(),
    poisonMessages: 0,
    delivered: new Set(),
    trace: [],
    stuck: false,
    queues: controlQueues(),
    counter: 0,
  };
}

function freshEvents(run: Run, count: number): RuntimeEvent[] {
  const padded = run.rng.chance(0.15);
  return Array.from({ length: count }, () => {
    const project = run.rng.pick(run.projects);
    const id = `${project}-e${run.counter++}`;
    return makeEvent(project, id, padded ? { n: run.counter, pad: "p".repeat(3_000) } : { n: run.counter });
  });
}

function freshIncrements(run: Run, count: number): Increment[] {
  return Array.from({ length: count }, () => ({
    id: `${run.keyPrefix}i${run.counter++}`,
    scope: run.rng.pick(["post", "user"] as const),
    key: `${run.keyPrefix}k${run.rng.int(0, 5)}`,
    field: run.rng.pick(["likes", "views", "shares"]),
    delta: run.rng.int(1, 100),
  }));
}

/** Some already accepted items again (a client resending them), mixed into a request. */
function repeats<T>(run: Run, accepted: Map<string, T>, max: number): T[] {
  const all = [...accepted.values()];
  return all.length === 0 ? [] : Array.from({ length: run.rng.int(0, max) }, () => run.rng.pick(all));
}

async function post(path: string, body: unknown, token = INGEST_KEY): Promise<Response> {
  return exports.default.fetch(`${BASE_URL}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/**
 * A client sending one request the way the contract asks: on a 503 it retries the same body
 * (after Retry-After, which the test does not wait out), and sometimes it sends it again after a
 * 2xx it did not see. Only a 202 puts the items in the model.
 */
async function clientSend(run: Run, path: "/v1/events" | "/v1/counters", items: (RuntimeEvent | Increment)[]) {
  const body = path === "/v1/events" ? { events: items } : { increments: items };
  if (run.rng.chance(0.2)) {
    run.queues.control.failNext = 1;
    const refused = await post(path, body);
    run.trace.push(`${path} ${items.length} → ${refused.status} (queue send failed)`);
    if (refused.status !== 503 || !(Number(refused.headers.get("retry-after")) > 0)) {
      throw new Error(
        `a failed queue send must be 503 with Retry-After, got ${refused.status}: ${await refused.text()}`,
      );
    }
    run.queues.control.failNext = 0;
  }
  const sends = run.rng.chance(0.2) ? 2 : 1;
  for (let i = 0; i < sends; i++) {
    const response = await post(path, body);
    run.trace.push(`${path} ${items.length}${i > 0 ? " again (lost 2xx)" : ""} → ${response.status}`);
    if (response.status !== 202) throw new Error(`${path} → ${response.status}: ${await response.text()}`);
  }
  for (const item of items) {
    if ("project_id" in item) run.events.set(item.id, item);
    else run.increments.set(item.id, item);
  }
}

/** Poison on a real queue through the on-call send: an envelope its consumer's schema refuses. */
async function sendPoison(run: Run) {
  const project = run.rng.pick(run.projects);
  const telemetry = run.rng.chance(0.5);
  const poisonId = `${project}-poison${run.counter++}`;
  run.poisonIds.add(poisonId);
  // A strict envelope with an extra field: refused by the consumer, archived under its project_id.
  const body = telemetry
    ? { ...envelope("telemetry.events", { events: [makeEvent(project, poisonId)] }), project_id: project }
    : {
        ...envelope("counters.increments", {
          increments: freshIncrements(run, 1).map((i) => ({ ...i, id: poisonId })),
        }),
        project_id: project,
      };
  const queue = telemetry ? QUEUES.telemetry.name : QUEUES.counters.name;
  const response = await post(`/v1/admin/queues/${queue}/send`, { body }, ADMIN_TOKEN);
  run.trace.push(`poison → ${queue} → ${response.status}`);
  if (response.status !== 202) throw new Error(`poison send → ${response.status}: ${await response.text()}`);
  run.poisonMessages++;
}

async function traffic(run: Run) {
  const actions = run.rng.int(3, 6);
  for (let i = 0; i < actions; i++) {
    const action = run.rng.pick(["events", "events", "counters", "counters", "poison"] as const);
    if (action === "events") {
      await clientSend(run, "/v1/events", [...freshEvents(run, run.rng.int(1, 40)), ...repeats(run, run.events, 5)]);
    } else if (action === "counters") {
      const fresh = freshIncrements(run, run.rng.int(1, 40));
      // Repeats inside the request too: the same increment id twice is applied once.
      await clientSend(run, "/v1/counters", [
        ...fresh,
        ...run.rng.some(fresh, 0.2),
        ...repeats(run, run.increments, 5),
      ]);
    } else await sendPoison(run);
  }
}

// ---------------------------------------------------------------------------------------------
// Playing the queue: deliveries to the real consumer, redelivering what it did not ack.

/** Runs the consumer once on `messages`; returns the ids it acked. `crashAtAck` kills it there. */
async function consumeOnce(queue: string, messages: Held, crashAtAck?: number): Promise<Set<string>> {
  const batch = createMessageBatch(queue, messages);
  const ctx = createExecutionContext();
  try {
    await worker.queue(observedBatch(batch, new Map(), crashAtAck), env);
  } catch (error) {
    if (crashAtAck === undefined) throw error;
  }
  const result = await getQueueResult(batch, ctx);
  return new Set(result.ackAll ? messages.map((m) => m.id) : result.explicitAcks);
}

/**
 * Delivers until every message is acked, redelivering the others (attempts + 1) as the queue
 * would. Faults are bounded, so this ends in a few rounds; more means a message is stuck.
 */
async function deliverUntilAcked(run: Run, queue: string, messages: Held, crashAtAck?: number): Promise<Held> {
  let pending = messages;
  for (let round = 0; pending.length > 0; round++) {
    if (round >= 6) throw new Error(`${pending.length} messages still unacked after ${round} deliveries`);
    const acked = await consumeOnce(queue, pending, round === 0 ? crashAtAck : undefined);
    run.trace.push(`deliver ${queue} ${pending.length} → acked ${acked.size}`);
    pending = pending.filter((m) => !acked.has(m.id)).map((m) => ({ ...m, attempts: m.attempts + 1 }));
  }
  return messages;
}

/** Telemetry and counter shard names holding some of `messages`' items. */
function shardsOf(telemetry: Held, counters: Held): { telemetry: string[]; counters: string[] } {
  const events = telemetry.flatMap((m) => TelemetryEventsEnvelopeSchema.parse(m.body).events);
  const increments = counters.flatMap((m) => CounterIncrementsEnvelopeSchema.parse(m.body).increments);
  return {
    telemetry: [...new Set(events.map((e) => shardOf(e.id)))],
    counters: [...new Set(increments.map((i) => counterShardName(counterShardOf(i.scope, i.key, shardCount()))))],
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function faults(run: Run) {
  const { control, take } = run.queues;
  control.hold = true;
  await clientSend(run, "/v1/events", freshEvents(run, run.rng.int(5, 60)));
  const fresh = freshIncrements(run, run.rng.int(5, 40));
  await clientSend(run, "/v1/counters", [...fresh, ...run.rng.some(fresh, 0.2)]);
  control.hold = false;
  const telemetry = take(QUEUES.telemetry.name);
  const counters = take(QUEUES.counters.name);
  const touched = shardsOf(telemetry, counters);
  const names = [...touched.telemetry, ...touched.counters];

  const failing = new Set(run.rng.some(names, 0.3));
  if (failing.size > 0) {
    const overloaded = run.rng.chance(0.5);
    armFault("consumer.shard_rpc", {
      times: run.rng.int(1, 2),
      when: ({ shard: name }) => typeof name === "string" && failing.has(name),
      error: () => Object.assign(new Error("injected shard RPC failure"), { overloaded }),
    });
    run.trace.push(`fault: shard RPC ${overloaded ? "overloaded" : "fails"} on ${[...failing].join(", ")}`);
  }
  if (run.rng.chance(0.4)) {
    const crashing = run.rng.pick(names);
    armFault("shard.ingest.after_write", { times: 1, when: ({ shard: name }) => name === crashing });
    run.trace.push(`fault: ${crashing} crashes inside its write`);
  }
  const d1Down = run.rng.chance(0.4);
  if (d1Down) {
    armFault("d1.batch", { error: () => new Error("D1_ERROR: Network connection lost.") });
    run.trace.push("fault: D1 down");
  }
  if (run.rng.chance(0.4)) {
    armFault("shard.flush.after_d1_commit", { times: run.rng.int(1, 2) });
    run.trace.push("fault: the next flush crashes after its D1 commit");
  }
  const crashAtAck = run.rng.chance(0.3) ? run.rng.int(0, Math.max(0, telemetry.length - 1)) : undefined;
  if (crashAtAck !== undefined) run.trace.push(`fault: the telemetry invocation dies acking message ${crashAtAck}`);

  await deliverUntilAcked(run, QUEUES.telemetry.name, telemetry, crashAtAck);
  await deliverUntilAcked(run, QUEUES.counters.name, counters);
  disarmFaults("consumer.shard_rpc");
  disarmFaults("shard.ingest.after_write");

  const evicted = [
    ...run.rng.some(touched.telemetry, 0.2).map((name) => ({ name, stub: shard(name) })),
    ...run.rng.some(touched.counters, 0.2).map((name) => ({ name, stub: env.COUNTER_SHARD.getByName(name) })),
  ];
  for (const { stub } of evicted) await evictDurableObject(stub);
  if (evicted.length > 0) run.trace.push(`fault: evicted ${evicted.map((e) => e.name).join(", ")}`);
  if (run.rng.chance(0.15)) {
    await abortAllDurableObjects();
    run.trace.push("fault: every Durable Object aborted");
  }
  if (d1Down) {
    // Long enough for the shards' 200 ms flush alarms to fire and fail at least once.
    await sleep(run.rng.int(300, 800));
    disarmFaults("d1.batch");
  }
  if (run.rng.chance(0.5)) await afterTheDedupeWindow(run);
  // Duplicate deliveries: messages the consumer acked, delivered again as new messages.
  const again = [...run.rng.some(telemetry, 0.3)].map((m) => ({ ...m, id: uid("dup"), attempts: 1 }));
  if (again.length > 0) await deliverUntilAcked(run, QUEUES.telemetry.name, again);
  const againCounters = [...run.rng.some(counters, 0.3)].map((m) => ({ ...m, id: uid("dup"), attempts: 1 }));
  if (againCounters.length > 0) await deliverUntilAcked(run, QUEUES.counters.name, againCounters);
}

/** Which of `ids` D1 has in `table`. */
async function inD1(table: "runtime_events" | "counter_increments", ids: string[]): Promise<Set<string>> {
  const { results } = await env.DB.prepare(`SELECT id FROM ${table} WHERE id IN (SELECT value FROM json_each(?))`)
    .bind(JSON.stringify(ids))
    .all<{ id: string }>();
  return new Set(results.map((row) => row.id));
}

/**
 * Drops `ids` from a shard's dedupe ledger, as retention pruning would once they are old: only ids
 * the shard no longer holds in `heldIn` (a row still buffered is days younger than any prune).
 * Returns the ids forgotten.
 */
async function forget(stub: DurableObjectStub, ids: string[], heldIn: readonly string[]): Promise<Set<string>> {
  const held = heldIn.map((table) => `AND id NOT IN (SELECT id FROM ${table})`).join(" ");
  return runInDurableObject(stub, (_instance, state) => {
    const rows = state.storage.sql
      .exec<{ id: string }>(
        `DELETE FROM seen WHERE id IN (SELECT value FROM json_each(?)) ${held} RETURNING id`,
        JSON.stringify(ids),
      )
      .toArray();
    return new Set(rows.map((row) => row.id));
  });
}

/** One new queue message carrying `body`. */
function message(body: unknown): Held {
  return [{ id: uid("late"), timestamp: new Date(), attempts: 1, body }];
}

/**
 * Row 7: a duplicate delivered after the shards' dedupe window. Some items already in D1 are
 * forgotten by their shards' ledgers (as retention pruning would), then delivered again: D1 (the
 * events' primary key, the increments' ledger) must still keep one of each.
 */
async function afterTheDedupeWindow(run: Run) {
  const eventCandidates = run.rng.some([...run.events.values()], 0.1).slice(0, 20);
  const inEvents = await inD1(
    "runtime_events",
    eventCandidates.map((e) => e.id),
  );
  const incCandidates = run.rng.some([...run.increments.values()], 0.1).slice(0, 20);
  const inLedger = await inD1(
    "counter_increments",
    incCandidates.map((i) => i.id),
  );
  const forgotten = new Set<string>();
  for (const event of eventCandidates.filter((e) => inEvents.has(e.id))) {
    for (const id of await forget(shard(shardOf(event.id)), [event.id], ["buffered_events"])) forgotten.add(id);
  }
  for (const inc of incCandidates.filter((i) => inLedger.has(i.id))) {
    const name = counterShardName(counterShardOf(inc.scope, inc.key, shardCount()));
    for (const id of await forget(env.COUNTER_SHARD.getByName(name), [inc.id], ["pending", "inflight"])) {
      forgotten.add(id);
    }
  }
  const events = eventCandidates.filter((e) => forgotten.has(e.id));
  const increments = incCandidates.filter((i) => forgotten.has(i.id));
  run.trace.push(`forgot ${events.length} events and ${increments.length} increments already in D1, then redelivered`);
  if (events.length > 0) {
    await deliverUntilAcked(run, QUEUES.telemetry.name, message(envelope("telemetry.events", { events })));
  }
  if (increments.length > 0) {
    await deliverUntilAcked(run, QUEUES.counters.name, message(envelope("counters.increments", { increments })));
  }
}

// ---------------------------------------------------------------------------------------------
// Idle and drain.

/** How many of `ids` are in the dedupe ledger (`seen`) of the shard object `stub`. */
async function seenBy(stub: DurableObjectStub, ids: readonly string[]): Promise<number> {
  return runInDurableObject(
    stub,
    (_instance, state) =>
      state.storage.sql
        .exec<{ n: number }>(
          "SELECT COUNT(*) AS n FROM seen WHERE id IN (SELECT value FROM json_each(?))",
          JSON.stringify(ids),
        )
        .one().n,
  );
}

/** True once every accepted id is in its shard's ledger (remembered for the next call). */
async function allDelivered(run: Run): Promise<boolean> {
  const groups = new Map<string, { stub: DurableObjectStub; ids: string[] }>();
  const add = (name: string, stub: DurableObjectStub, id: string) => {
    const group = groups.get(name) ?? { stub, ids: [] };
    group.ids.push(id);
    groups.set(name, group);
  };
  for (const id of run.events.keys()) if (!run.delivered.has(id)) add(shardOf(id), shard(shardOf(id)), id);
  for (const inc of run.increments.values()) {
    if (run.delivered.has(inc.id)) continue;
    const name = counterShardName(counterShardOf(inc.scope, inc.key, shardCount()));
    add(name, env.COUNTER_SHARD.getByName(name), inc.id);
  }
  let complete = true;
  for (const { stub, ids } of groups.values()) {
    if ((await seenBy(stub, ids)) === ids.length) ids.forEach((id) => run.delivered.add(id));
    else complete = false;
  }
  return complete;
}

async function archivedPoison(run: Run): Promise<number> {
  const row = await env.DB.prepare(
    "SELECT COUNT(*) AS n FROM dead_letters WHERE project_id IN (SELECT value FROM json_each(?))",
  )
    .bind(JSON.stringify(run.projects))
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * Waits until the real queues have nothing of this run in flight. False when they never get there
 * (an accepted item that no shard stored): the run stops and the audit says what was lost.
 */
async function idle(run: Run): Promise<boolean> {
  try {
    await vi.waitUntil(
      async () => (await allDelivered(run)) && (await archivedPoison(run)) >= run.poisonMessages,
      IDLE,
    );
    return true;
  } catch {
    run.trace.push(`the queues did not go idle within ${IDLE.timeout} ms`);
    run.stuck = true;
    return false;
  }
}

/** Disarms every fault, waits for the queues, then flushes every telemetry and counter shard. */
async function drain(run: Run) {
  disarmFaults();
  run.queues.control.hold = false;
  run.queues.control.failNext = 0;
  if (!run.stuck && !(await idle(run))) return;
  for (let index = 0; index < shardCount(); index++) {
    const events = shard(`events-${index}`);
    for (let i = 0; i < 10 && (await events.status()).buffered > 0; i++) await events.flushNow();
    const counters = counterShard(env, index);
    for (let i = 0; i < 10; i++) {
      const status = await counters.status();
      if (status.pending + status.inflight === 0) break;
      await counters.reconcile(0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The check.

function firstFew(items: Iterable<string>): string[] {
  return [...items].slice(0, 10);
}

async function audit(run: Run) {
  const { results: rows } = await env.DB.prepare(
    "SELECT id, project_id, type, ts, data FROM runtime_events WHERE project_id IN (SELECT value FROM json_each(?))",
  )
    .bind(JSON.stringify(run.projects))
    .all<{ id: string; project_id: string; type: string; ts: number; data: string }>();
  const stored = new Map<string, number>();
  for (const row of rows) stored.set(row.id, (stored.get(row.id) ?? 0) + 1);
  const altered = rows.filter((row) => {
    const sent = run.events.get(row.id);
    return sent !== undefined && (row.data !== JSON.stringify(sent.data) || row.ts !== sent.ts);
  });

  const { results: applied } = await env.DB.prepare(
    "SELECT id FROM counter_increments WHERE substr(id, 1, ?) = ? OR id IN (SELECT value FROM json_each(?))",
  )
    .bind(run.keyPrefix.length, run.keyPrefix, JSON.stringify([...run.poisonIds]))
    .all<{ id: string }>();
  const appliedIds = new Map<string, number>();
  for (const { id } of applied) appliedIds.set(id, (appliedIds.get(id) ?? 0) + 1);

  const expected = new Map<string, number>();
  for (const inc of run.increments.values()) {
    const cell = `${inc.scope}|${inc.key}|${inc.field}`;
    expected.set(cell, (expected.get(cell) ?? 0) + inc.delta);
  }
  const { results: cells } = await env.DB.prepare(
    "SELECT scope, key, field, value FROM counters WHERE substr(key, 1, ?) = ?",
  )
    .bind(run.keyPrefix.length, run.keyPrefix)
    .all<{ scope: string; key: string; field: string; value: number }>();
  const actual = new Map(cells.map((c) => [`${c.scope}|${c.key}|${c.field}`, c.value]));
  const wrongCounters = [...new Set([...expected.keys(), ...actual.keys()])]
    .filter((cell) => expected.get(cell) !== actual.get(cell))
    .map((cell) => `${cell}: expected ${expected.get(cell) ?? 0}, got ${actual.get(cell) ?? "no row"}`);

  return {
    lost: firstFew([
      ...[...run.events.keys()].filter((id) => !stored.has(id)),
      ...[...run.increments.keys()].filter((id) => !appliedIds.has(id)),
    ]),
    duplicated: firstFew([...stored, ...appliedIds].filter(([, n]) => n > 1).map(([id]) => id)),
    unexpected: firstFew([
      ...[...stored.keys()].filter((id) => !run.events.has(id)),
      ...[...appliedIds.keys()].filter((id) => !run.increments.has(id)),
    ]),
    altered: firstFew(altered.map((row) => row.id)),
    wrongCounters: firstFew(wrongCounters),
    poisonArchived: (await archivedPoison(run)) === run.poisonMessages,
  };
}

describe("row 18: seeded chaos, then drain", () => {
  it.for(SEEDS)("seed %i: lost = 0, duplicated = 0, unexpected = 0", { timeout: 45_000 }, async (seed, { expect }) => {
    const run = newRun(seed);
    for (let round = 0; round < ROUNDS; round++) {
      await traffic(run);
      if (!(await idle(run))) break;
      await faults(run);
    }
    await traffic(run);
    await drain(run);
    const outcome = await audit(run);
    expect(run.events.size, "accepted events").toBeGreaterThan(0);
    expect(run.increments.size, "accepted increments").toBeGreaterThan(0);
    expect(
      outcome,
      `seed ${seed}: ${run.events.size} events, ${run.increments.size} increments, ${run.poisonMessages} poison accepted; trace:\n${run.trace.join("\n")}`,
    ).toEqual({ lost: [], duplicated: [], unexpected: [], altered: [], wrongCounters: [], poisonArchived: true });
  });
});
