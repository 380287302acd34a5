/**
 * The dead-letter archive and the on-call toolkit end to end (issue 6): failure reasons recorded
 * before retries and carried into the archive, the raw queue send, list/show/delete/purge, and
 * redrive tasks (RedriveTask objects) moving messages back through the real queues, consumers,
 * shards and D1.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { telemetryShardName } from "../durable/runtime-event-shard.do.ts";
import { NO_REASON_RECORDED } from "../consumers/dead-letter.consumer.ts";
import { ROUND_INTERVAL_MS, type RedriveStatus } from "../durable/redrive-task.do.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { messageKey } from "../lib/dead-letters.d1.ts";
import type { DeadLetter } from "../schemas/dlq.schema.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import {
  ADMIN_TOKEN,
  BASE_URL,
  INGEST_KEY,
  WAIT,
  countRows,
  deliver,
  eventsInShard,
  makeEvents,
  readError,
  shardCount,
  uid,
  waitForRows,
} from "./helpers.ts";
import { QUEUES } from "../lib/queues.ts";

const TELEMETRY_DLQ = `${QUEUES.telemetry.name}-dlq`;
/** Redrive tasks take a second per round; a whole task in these tests takes a few. */
const TASK_WAIT = { timeout: 20_000, interval: 100 } as const;

type DeadLetterBody = DeadLetter;
type TaskBody = RedriveStatus;
interface ListBody {
  items: DeadLetterBody[];
  next_cursor: string | null;
}

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

function call(
  method: string,
  path: string,
  options: { body?: unknown; token?: string | null } = {},
): Promise<Response> {
  const headers = new Headers();
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  if (options.body !== undefined) headers.set("content-type", "application/json");
  return exports.default.fetch(`${BASE_URL}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

async function json<T>(response: Response, status: number): Promise<T> {
  if (response.status !== status) {
    throw new Error(`${response.url} → ${response.status} (expected ${status}): ${await response.text()}`);
  }
  return response.json<T>();
}

async function list(query: Record<string, string | number>): Promise<ListBody> {
  const params = new URLSearchParams(Object.entries(query).map(([name, value]) => [name, String(value)]));
  return json<ListBody>(await call("GET", `/v1/admin/dlq?${params.toString()}`), 200);
}

/** Every archived message of a project, through the API. */
async function archived(projectId: string): Promise<DeadLetterBody[]> {
  return (await list({ project_id: projectId, limit: 100 })).items;
}

async function waitForArchived(projectId: string, count: number): Promise<DeadLetterBody[]> {
  await vi.waitUntil(async () => (await archived(projectId)).length >= count, WAIT);
  return archived(projectId);
}

async function redrive(body: Record<string, unknown>): Promise<{ task_id: string; total: number }> {
  return json(await call("POST", "/v1/admin/dlq/redrive", { body }), 202);
}

async function task(taskId: string): Promise<TaskBody> {
  return json<TaskBody>(await call("GET", `/v1/admin/dlq/redrive/${taskId}`), 200);
}

async function waitForTask(taskId: string, statuses: readonly string[] = ["completed"]): Promise<TaskBody> {
  await vi.waitUntil(async () => statuses.includes((await task(taskId)).status), TASK_WAIT);
  return task(taskId);
}

/** Archives `bodies` as the queue does after max_retries: raw bodies delivered to the dead-letter queue. */
async function archiveRaw(bodies: readonly unknown[], queue = TELEMETRY_DLQ): Promise<string[]> {
  const messages = bodies.map((body) => ({ id: uid("msg"), timestamp: new Date(), attempts: 1, body }));
  const result = await deliver(messages, env, queue);
  if (result.retryMessages.length > 0) throw new Error("archiving failed");
  return messages.map((message) => message.id);
}

/** `count` valid telemetry envelopes of `projectId`, `perMessage` events each. */
function telemetryBodies(projectId: string, count: number, perMessage = 2): ReturnType<typeof envelope>[] {
  return Array.from({ length: count }, (_, m) =>
    envelope("telemetry.events", {
      events: makeEvents(projectId, perMessage).map((event) => ({ ...event, id: `${event.id}-m${m}` })),
    }),
  );
}

/** `depth` empty arrays, one inside the other. */
function nested(depth: number): unknown {
  return JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
}

async function failureRecord(queue: string, body: unknown) {
  return env.DB.prepare(
    "SELECT attempts, prior_attempts, last_error, first_failure_at FROM message_failures WHERE source_queue = ? AND message_key = ?",
  )
    .bind(queue, await messageKey(body))
    .first<{ attempts: number; prior_attempts: number; last_error: string; first_failure_at: number }>();
}

describe("POST /v1/admin/queues/:queue/send", () => {
  it("a message its consumer cannot parse ends in the archive with its reason (real queue)", async ({ expect }) => {
    const projectId = uid("send-poison");
    const poison = { type: "telemetry.events", project_id: projectId, events: "not a list" };
    const response = await call("POST", `/v1/admin/queues/${QUEUES.telemetry.name}/send`, { body: { body: poison } });
    expect(await json(response, 202)).toMatchObject({ queue: QUEUES.telemetry.name, delay_seconds: 0 });

    const [letter] = await waitForArchived(projectId, 1);
    expect(letter).toMatchObject({
      source_queue: QUEUES.telemetry.name,
      envelope_type: "telemetry.events",
      project_id: projectId,
      attempts: 1,
      body: poison,
    });
    expect(letter?.last_error).toMatch(/^envelope failed its schema/);
    expect(letter?.last_error).toMatch(/events/);
    // The action is in the audit trail.
    const audited = await env.DB.prepare(
      "SELECT actor, details FROM audit_log WHERE type = 'queue.sent' ORDER BY at DESC",
    ).all<{ actor: string; details: string }>();
    expect(audited.results.some((row) => row.actor.startsWith("admin:"))).toBe(true);
  });

  it("an unknown queue is 404, a body over the message limit 413, a missing body 400", async ({ expect }) => {
    const unknown = await call("POST", "/v1/admin/queues/shipyard-nope/send", { body: { body: 1 } });
    expect(unknown.status).toBe(404);
    expect((await readError(unknown)).error.code).toBe("not_found");
    const big = await call("POST", `/v1/admin/queues/${QUEUES.telemetry.name}/send`, {
      body: { body: "x".repeat(130 * 1024) },
    });
    expect(big.status).toBe(413);
    const missing = await call("POST", `/v1/admin/queues/${QUEUES.telemetry.name}/send`, {
      body: { delay_seconds: 1 },
    });
    expect(missing.status).toBe(400);
    // Nesting is bounded (walked iteratively): 100 levels go, 101 are refused, 100,000 never crash.
    const deepOk = await call("POST", `/v1/admin/queues/${TELEMETRY_DLQ}/send`, { body: { body: nested(100) } });
    expect(deepOk.status).toBe(202);
    for (const depth of [101, 100_000]) {
      const response = await exports.default.fetch(`${BASE_URL}/v1/admin/queues/${QUEUES.telemetry.name}/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: `{"body": ${"[".repeat(depth)}${"]".repeat(depth)}}`,
      });
      expect(response.status, `depth ${depth}`).toBe(400);
    }
  });
});

describe("dead-letter archive", () => {
  it("a consumer's failure reason, attempts and first failure survive max_retries into the archive", async ({
    expect,
  }) => {
    const projectId = uid("reason");
    const index = 3 % shardCount();
    const events: RuntimeEvent[] = eventsInShard(projectId, index, 3);
    const body = envelope("telemetry.events", { events });
    const message = { id: uid("msg"), timestamp: new Date(), attempts: 1, body };
    armFault("consumer.shard_rpc", { when: ({ shard }) => shard === telemetryShardName(index) });

    const first = await deliver([message]);
    expect(first.retryMessages.map((retry) => retry.msgId)).toEqual([message.id]);
    const recorded = await failureRecord(QUEUES.telemetry.name, body);
    expect(recorded).toMatchObject({ attempts: 1, prior_attempts: 0 });
    expect(recorded?.last_error).toContain("injected fault at consumer.shard_rpc");

    // The last delivery the queue allows (max_retries = 8) fails too …
    await deliver([{ ...message, attempts: 9 }]);
    expect(await failureRecord(QUEUES.telemetry.name, body)).toMatchObject({
      attempts: 9,
      first_failure_at: recorded?.first_failure_at,
    });
    // … and the queue moves the raw body to the dead-letter queue.
    const result = await deliver([{ ...message, attempts: 1 }], env, TELEMETRY_DLQ);
    expect(result.explicitAcks.length + (result.ackAll ? 1 : 0)).toBeGreaterThan(0);

    const [letter] = await archived(projectId);
    expect(letter).toMatchObject({
      source_queue: QUEUES.telemetry.name,
      message_id: message.id,
      envelope_type: "telemetry.events",
      attempts: 9,
      first_failure_at: recorded?.first_failure_at,
      body,
    });
    expect(letter?.last_error).toContain(`shard ${telemetryShardName(index)} call failed`);
    // The record was consumed with the archiving.
    expect(await failureRecord(QUEUES.telemetry.name, body)).toBeNull();
  });

  it("a raw body without a recorded reason says so", async ({ expect }) => {
    const projectId = uid("no-reason");
    await archiveRaw([{ type: "telemetry.events", project_id: projectId }]);
    const [letter] = await archived(projectId);
    expect(letter?.last_error).toBe(NO_REASON_RECORDED);
  });

  it("reads the indexed fields independently: a wrong-shaped type keeps the project id and back", async ({
    expect,
  }) => {
    const projectA = uid("fields-a");
    const projectB = uid("fields-b");
    await archiveRaw([
      { type: 42, project_id: projectA },
      { type: "telemetry.events", project_id: 7, events: [{ nope: true }, { project_id: projectB }] },
    ]);
    expect(await archived(projectA)).toMatchObject([{ envelope_type: null, project_id: projectA }]);
    expect(await archived(projectB)).toMatchObject([{ envelope_type: "telemetry.events", project_id: projectB }]);
  });

  it("the same queue message archived twice counts once; the same body from another message adds up", async ({
    expect,
  }) => {
    const projectId = uid("twice");
    const body = { type: "telemetry.events", project_id: projectId, broken: true };
    const message = { id: uid("msg"), timestamp: new Date(), attempts: 1, body };
    await deliver([message], env, TELEMETRY_DLQ);
    await deliver([{ ...message, attempts: 2 }], env, TELEMETRY_DLQ);
    const [once] = await archived(projectId);
    expect(once?.attempts).toBe(1);
    await deliver([{ ...message, id: uid("msg") }], env, TELEMETRY_DLQ);
    const rows = await archived(projectId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: once?.id, attempts: 2 });
  });
});

describe("redrive", () => {
  it("poison → archived with its reason → redrive → archived again with attempts counted", async ({ expect }) => {
    const projectId = uid("poison-redrive");
    const poison = { ...telemetryBodies(projectId, 1)[0], v: 2 };
    await json(await call("POST", `/v1/admin/queues/${QUEUES.telemetry.name}/send`, { body: { body: poison } }), 202);
    const [first] = await waitForArchived(projectId, 1);
    expect(first).toMatchObject({ attempts: 1, source_queue: QUEUES.telemetry.name });
    expect(first?.last_error).toMatch(/^envelope failed its schema/);

    const { task_id, total } = await redrive({ ids: [first?.id] });
    expect(total).toBe(1);
    const done = await waitForTask(task_id);
    expect(done).toMatchObject({ total: 1, moved: 1, skipped: 0, failed: 0, pending: 0 });

    // Back through the real queue, refused again, archived again: same archive id, attempts added up.
    await vi.waitUntil(async () => (await archived(projectId))[0]?.attempts === 2, WAIT);
    const [second] = await archived(projectId);
    expect(second).toMatchObject({ id: first?.id, attempts: 2, first_failure_at: first?.first_failure_at });
    expect(second?.last_failure_at).toBeGreaterThanOrEqual(first?.last_failure_at ?? 0);
    expect(second?.message_id).not.toBe(first?.message_id);
  });

  it("a fixable failure → fixed → redrive → processed exactly once; a repeated redrive adds nothing", async ({
    expect,
  }) => {
    const projectId = uid("fixable");
    const index = 5 % shardCount();
    const events = eventsInShard(projectId, index, 4);
    const body = envelope("telemetry.events", { events });
    const message = { id: uid("msg"), timestamp: new Date(), attempts: 9, body };
    // The shard is down for the message's last delivery: recorded, then dead-lettered raw.
    armFault("consumer.shard_rpc", { when: ({ shard }) => shard === telemetryShardName(index) });
    await deliver([message]);
    disarmFaults();
    await deliver([{ ...message, attempts: 1 }], env, TELEMETRY_DLQ);
    const [letter] = await archived(projectId);
    expect(letter?.last_error).toContain("injected fault at consumer.shard_rpc");
    expect(await countRows(projectId)).toBe(0);

    // Fixed (the fault is gone): redrive it.
    const { task_id } = await redrive({ filter: { project_id: projectId } });
    expect(await waitForTask(task_id)).toMatchObject({ total: 1, moved: 1 });
    expect(await waitForRows(projectId, 4)).toBe(4);
    expect(await archived(projectId)).toEqual([]);

    // A repeated redrive finds nothing left to move …
    const again = await redrive({ filter: { project_id: projectId } });
    expect(await waitForTask(again.task_id)).toMatchObject({ total: 0, moved: 0 });
    // … and a copy that is archived again anyway (a crash between a send and its delete) is moved
    // again harmlessly: the events keep their ids, and every stage dedupes on them.
    await archiveRaw([body]);
    const third = await redrive({ filter: { project_id: projectId } });
    expect(await waitForTask(third.task_id)).toMatchObject({ total: 1, moved: 1 });
    await vi.waitUntil(async () => (await archived(projectId)).length === 0, WAIT);
    // Give the redelivered copy time to pass the shards and a flush: still exactly 4 rows.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await countRows(projectId)).toBe(4);
  });

  it("velocity: max_per_second 5 moves 12 messages in at least 3 rounds, none over 5, a second apart", async ({
    expect,
  }) => {
    const projectId = uid("velocity");
    await archiveRaw(telemetryBodies(projectId, 12, 1));
    const { task_id, total } = await redrive({ filter: { project_id: projectId }, max_per_second: 5 });
    expect(total).toBe(12);
    const done = await waitForTask(task_id);
    expect(done).toMatchObject({ moved: 12, pending: 0 });

    const sending = done.rounds.filter((round) => round.sent > 0);
    expect(sending.length).toBeGreaterThanOrEqual(3);
    expect(sending.reduce((sum, round) => sum + round.sent, 0)).toBe(12);
    for (const round of done.rounds) expect(round.sent).toBeLessThanOrEqual(5);
    // The task's own record: every round was scheduled, and started, a full second after the last ended.
    for (let i = 1; i < done.rounds.length; i++) {
      const previous = done.rounds[i - 1];
      const current = done.rounds[i];
      expect(previous?.next_at).toBeGreaterThanOrEqual((previous?.finished_at ?? 0) + ROUND_INTERVAL_MS);
      expect(current?.started_at).toBeGreaterThanOrEqual(previous?.next_at ?? 0);
    }
    expect(await waitForRows(projectId, 12)).toBe(12);
  });

  it("cancel mid-task stops it: status cancelled, moved < total, the rest stays archived", async ({ expect }) => {
    const projectId = uid("cancel");
    await archiveRaw(telemetryBodies(projectId, 4, 1));
    const { task_id } = await redrive({ filter: { project_id: projectId }, max_per_second: 1 });
    // The first round runs at once; the next not before a second after it (one message each).
    await vi.waitUntil(async () => (await task(task_id)).moved >= 1, TASK_WAIT);
    const cancelled = await json<TaskBody>(await call("POST", `/v1/admin/dlq/redrive/${task_id}/cancel`), 200);
    expect(["cancelling", "cancelled"]).toContain(cancelled.status);
    const stopped = await waitForTask(task_id, ["cancelled"]);
    expect(stopped.moved).toBeGreaterThanOrEqual(1);
    expect(stopped.moved).toBeLessThan(stopped.total);

    // Its alarm now only clears the status days later: running it, or waiting, moves nothing more.
    await runDurableObjectAlarm(env.REDRIVE_TASK.getByName(task_id));
    await new Promise((resolve) => setTimeout(resolve, ROUND_INTERVAL_MS + 200));
    const after = await task(task_id);
    expect(after).toMatchObject({ status: "cancelled", moved: stopped.moved, total: 4, pending: 4 - stopped.moved });
    expect(await archived(projectId)).toHaveLength(4 - stopped.moved);
    // Cancelling again is idempotent; the lock is free again: the rest can be redriven.
    expect((await call("POST", `/v1/admin/dlq/redrive/${task_id}/cancel`)).status).toBe(200);
    const rest = await redrive({ filter: { project_id: projectId } });
    expect(await waitForTask(rest.task_id)).toMatchObject({ total: 4 - stopped.moved, moved: 4 - stopped.moved });
    expect(await waitForRows(projectId, 4)).toBe(4);
    // A finished task cannot be cancelled.
    expect((await call("POST", `/v1/admin/dlq/redrive/${rest.task_id}/cancel`)).status).toBe(409);
  });

  it("one running task per source queue: a second is 409 naming the first", async ({ expect }) => {
    const projectId = uid("lock");
    await archiveRaw(telemetryBodies(projectId, 3, 1));
    // A dry run only counts (and takes no lock).
    const dry = await redrive({ filter: { queue: QUEUES.telemetry.name, project_id: projectId }, dry_run: true });
    expect(await task(dry.task_id)).toMatchObject({ status: "completed", dry_run: true, total: 3, moved: 0 });

    const first = await redrive({ filter: { project_id: projectId }, max_per_second: 1 });
    const second = await call("POST", "/v1/admin/dlq/redrive", { body: { filter: { queue: QUEUES.telemetry.name } } });
    expect(second.status).toBe(409);
    expect(await readError(second)).toMatchObject({
      error: { code: "redrive_running", details: { source_queue: QUEUES.telemetry.name, task_id: first.task_id } },
    });
    // Another queue is not blocked.
    const counters = await redrive({ filter: { queue: QUEUES.counters.name, project_id: projectId } });
    expect(await waitForTask(counters.task_id)).toMatchObject({ total: 0 });
    // A dry run is not blocked either.
    expect((await redrive({ filter: { queue: QUEUES.telemetry.name }, dry_run: true })).task_id).toBeTruthy();
    await json(await call("POST", `/v1/admin/dlq/redrive/${first.task_id}/cancel`), 200);
    await waitForTask(first.task_id, ["cancelled"]);
  });

  it("the task keeps its state in SQLite: an unknown task is 404, a bad id 400", async ({ expect }) => {
    expect((await call("GET", `/v1/admin/dlq/redrive/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call("GET", "/v1/admin/dlq/redrive/not-a-uuid")).status).toBe(400);
    const projectId = uid("state");
    await archiveRaw(telemetryBodies(projectId, 1, 1));
    const { task_id } = await redrive({ filter: { project_id: projectId }, dry_run: true });
    const rows = await runInDurableObject(env.REDRIVE_TASK.getByName(task_id), (_instance, state) =>
      state.storage.sql.exec<{ status: string }>("SELECT status FROM task").toArray(),
    );
    expect(rows).toEqual([{ status: "completed" }]);
  });
});

describe("GET /v1/admin/dlq, show, delete, purge", () => {
  it("filters by queue, type, project and time, and pages with an opaque, stable cursor", async ({ expect }) => {
    const projectId = uid("list");
    const before = Date.now();
    await archiveRaw(telemetryBodies(projectId, 5, 1));
    const middle = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await archiveRaw(
      [
        { type: "counters.increments", project_id: projectId, increments: [] },
        { type: "counters.increments", project_id: projectId, increments: [1] },
      ],
      `${QUEUES.counters.name}-dlq`,
    );

    const pages: DeadLetterBody[][] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string | number> = { project_id: projectId, queue: QUEUES.telemetry.name, limit: 2 };
      if (cursor) query.cursor = cursor;
      const page = await list(query);
      pages.push(page.items);
      cursor = page.next_cursor;
    } while (cursor);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    const all = pages.flat();
    expect(new Set(all.map((item) => item.id)).size).toBe(5);
    // Newest archived first, and the same order as one big page.
    const whole = await list({ project_id: projectId, queue: QUEUES.telemetry.name, limit: 100 });
    expect(whole.items.map((item) => item.id)).toEqual(all.map((item) => item.id));
    for (let i = 1; i < all.length; i++) {
      expect(all[i - 1]?.archived_at).toBeGreaterThanOrEqual(all[i]?.archived_at ?? 0);
    }

    // The -dlq name works as the queue filter; type and time narrow.
    expect((await list({ project_id: projectId, queue: `${QUEUES.counters.name}-dlq` })).items).toHaveLength(2);
    expect((await list({ project_id: projectId, type: "counters.increments" })).items).toHaveLength(2);
    expect((await list({ project_id: projectId, type: "telemetry.events" })).items).toHaveLength(5);
    expect((await list({ project_id: projectId, since: before, until: middle + 1 })).items).toHaveLength(5);
    expect(
      (await list({ project_id: projectId, since: new Date(middle + 1).toISOString() })).items.length,
    ).toBeLessThanOrEqual(2);

    expect((await call("GET", "/v1/admin/dlq?cursor=nonsense")).status).toBe(400);
    expect((await call("GET", "/v1/admin/dlq?limit=0")).status).toBe(400);
    expect((await call("GET", "/v1/admin/dlq?colour=red")).status).toBe(400);
  });

  it("shows and deletes one message (audited); an unknown id is 404", async ({ expect }) => {
    const projectId = uid("show");
    await archiveRaw(telemetryBodies(projectId, 1, 1));
    const [item] = await archived(projectId);
    const shown = await json<DeadLetterBody>(await call("GET", `/v1/admin/dlq/${item?.id}`), 200);
    expect(shown).toEqual(item);
    expect(await json(await call("DELETE", `/v1/admin/dlq/${item?.id}`), 200)).toEqual({ id: item?.id, deleted: true });
    expect((await call("GET", `/v1/admin/dlq/${item?.id}`)).status).toBe(404);
    expect((await call("DELETE", `/v1/admin/dlq/${item?.id}`)).status).toBe(404);
    const audited = await env.DB.prepare("SELECT details FROM audit_log WHERE type = 'dlq.deleted' AND project_id = ?")
      .bind(projectId)
      .all();
    expect(audited.results).toHaveLength(1);
  });

  it("purge: dry_run only counts; a filter deletes; no filter needs all: true", async ({ expect }) => {
    const projectId = uid("purge");
    await archiveRaw(telemetryBodies(projectId, 3, 1));
    const dry = await json(
      await call("POST", "/v1/admin/dlq/purge", { body: { filter: { project_id: projectId }, dry_run: true } }),
      200,
    );
    expect(dry).toEqual({ dry_run: true, matched: 3, purged: 0, more: false });
    expect(await archived(projectId)).toHaveLength(3);

    const unfiltered = await call("POST", "/v1/admin/dlq/purge", { body: {} });
    expect(unfiltered.status).toBe(400);
    expect((await readError(unfiltered)).error.code).toBe("filter_required");

    const purged = await json(
      await call("POST", "/v1/admin/dlq/purge", { body: { filter: { project_id: projectId } } }),
      200,
    );
    expect(purged).toEqual({ dry_run: false, matched: 3, purged: 3, more: false });
    expect(await archived(projectId)).toEqual([]);
  });

  it("every on-call route needs the admin token: none is 401, an ingest key 403", async ({ expect }) => {
    const id = crypto.randomUUID();
    const routes: [string, string, unknown?][] = [
      ["GET", "/v1/admin/dlq"],
      ["GET", `/v1/admin/dlq/${id}`],
      ["DELETE", `/v1/admin/dlq/${id}`],
      ["POST", "/v1/admin/dlq/purge", { dry_run: true }],
      ["POST", "/v1/admin/dlq/redrive", { dry_run: true }],
      ["GET", `/v1/admin/dlq/redrive/${id}`],
      ["POST", `/v1/admin/dlq/redrive/${id}/cancel`],
      ["POST", `/v1/admin/queues/${QUEUES.telemetry.name}/send`, { body: 1 }],
    ];
    for (const [method, path, body] of routes) {
      const none = await call(method, path, { body, token: null });
      expect(none.status, `${method} ${path}`).toBe(401);
      const ingest = await call(method, path, { body, token: INGEST_KEY });
      expect(ingest.status, `${method} ${path}`).toBe(403);
    }
  });
});
