/**
 * The contract's error model on `POST /v1/events` (CONTRACT.md "Errors"; RELIABILITY.md rows 1 and
 * 17): every refusal has its status and JSON code, and a refused request enqueued nothing.
 * "Nothing enqueued" is observed with a spy on the Worker's own `TELEMETRY_QUEUE` binding; the
 * first test proves that spy really sees the Worker's sends.
 */
import { env, exports } from "cloudflare:workers";
import { type ExpectStatic, afterEach, beforeEach, describe, it, vi } from "vitest";
import { TelemetryEventsEnvelopeSchema } from "../schemas/envelope.schema.ts";
import { MAX_EVENTS_PER_REQUEST, MAX_EVENT_DATA_BYTES } from "../schemas/runtime-event.schema.ts";
import {
  ADMIN_TOKEN,
  BASE_URL,
  INGEST_KEY,
  type ErrorBody,
  SENT,
  WAIT,
  countRows,
  ingestSends,
  makeEvent,
  makeEvents,
  observeShardIngests,
  postEvents,
  readError,
  spyOnTelemetrySends,
  uid,
  waitForRows,
} from "./helpers.ts";

const MIB = 1024 * 1024;

/** The binding's own sendBatch, taken before any spy wraps it. */
const realSendBatch = env.TELEMETRY_QUEUE.sendBatch.bind(env.TELEMETRY_QUEUE);
let sends: ReturnType<typeof spyOnTelemetrySends>;
beforeEach(() => {
  sends = spyOnTelemetrySends();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** A body of valid JSON over 1 MiB: 70 events of 15 KB. */
function oversizedBody(projectId: string) {
  return { events: makeEvents(projectId, 70, { dataBytes: 15_000 }) };
}

/** A chunked body with no length: 64 KiB chunks, up to `limit` bytes, counting what was pulled. */
function endlessBody(limit: number) {
  const pulled = { bytes: 0 };
  const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled.bytes >= limit) {
        controller.close();
        return;
      }
      pulled.bytes += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, pulled };
}

interface ErrorCase {
  name: string;
  request: (projectId: string) => Promise<Response>;
  status: number;
  code: string;
  /** Further checks on the answer. */
  check?: (expect: ExpectStatic, response: Response, body: ErrorBody) => void;
}

function issues(body: ErrorBody): unknown {
  return body.error.details;
}

describe("POST /v1/events error model", () => {
  it("positive control: the queue spy sees the Worker's own sends (and calls through)", async ({ expect }) => {
    const projectId = uid("control");
    const response = await postEvents({ events: makeEvents(projectId, 3) });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 3 });
    expect(sends.sendBatch).toHaveBeenCalledTimes(1);
    const [messages] = sends.sendBatch.mock.calls[0] ?? [];
    expect([...(messages ?? [])]).toEqual([
      expect.objectContaining({
        contentType: "json",
        body: expect.objectContaining({ type: "telemetry.events", events: makeEvents(projectId, 3) }),
      }),
    ]);
    expect(await waitForRows(projectId, 3)).toBe(3);
  });

  const cases: ErrorCase[] = [
    {
      name: "401 without Authorization",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"))] }, { key: null }),
      status: 401,
      code: "unauthorized",
      check: (expect, response) => expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/),
    },
    {
      name: "401 with an unknown credential",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"))] }, { key: "not-a-key" }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "401 before reading an oversized body",
      request: (p) => postEvents(oversizedBody(p), { key: null }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "403 with the admin token",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"))] }, { key: ADMIN_TOKEN }),
      status: 403,
      code: "forbidden",
    },
    {
      name: "404 on an unknown route",
      request: (p) =>
        exports.default.fetch(`${BASE_URL}/v1/event`, {
          method: "POST",
          headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ events: [makeEvent(p, uid("e"))] }),
        }),
      status: 404,
      code: "not_found",
    },
    ...["GET", "PUT", "DELETE"].map((method): ErrorCase => ({
      name: `405 on ${method} /v1/events, with Allow: POST`,
      request: () =>
        exports.default.fetch(`${BASE_URL}/v1/events`, {
          method,
          headers: { authorization: `Bearer ${INGEST_KEY}` },
        }),
      status: 405,
      code: "method_not_allowed",
      check: (expect, response) => expect(response.headers.get("allow")).toBe("POST"),
    })),
    {
      name: "413 on a declared Content-Length over 1 MiB",
      request: (p) => postEvents(JSON.stringify(oversizedBody(p))),
      status: 413,
      code: "payload_too_large",
      check: (expect, _response, body) => expect(body.error.details).toEqual({ limit_bytes: MIB }),
    },
    {
      name: "415 on text/plain",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"))] }, { contentType: "text/plain" }),
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "415 without Content-Type",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"))] }, { contentType: null }),
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "400 invalid JSON",
      request: () => postEvents('{"events": [{"id": "a",'),
      status: 400,
      code: "invalid_json",
    },
    {
      name: "400 on a body that is not UTF-8",
      request: () => postEvents(new Blob([new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])]).stream()),
      status: 400,
      code: "invalid_json",
    },
    {
      name: "400 wrong field types, with the zod issues",
      request: (p) => postEvents({ events: [{ id: 5, project_id: p, type: "t", ts: "yesterday", data: [] }] }),
      status: 400,
      code: "invalid_body",
      check: (expect, _response, body) =>
        expect(issues(body)).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ code: "invalid_type", path: ["events", 0, "id"] }),
            expect.objectContaining({ code: "invalid_type", path: ["events", 0, "ts"] }),
            expect.objectContaining({ code: "invalid_type", path: ["events", 0, "data"] }),
          ]),
        ),
    },
    {
      name: "400 extra fields on the body and on an event",
      request: (p) => postEvents({ events: [{ ...makeEvent(p, uid("e")), colour: "red" }], extra: true }),
      status: 400,
      code: "invalid_body",
      check: (expect, _response, body) =>
        expect(issues(body)).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ code: "unrecognized_keys", path: [], keys: ["extra"] }),
            expect.objectContaining({ code: "unrecognized_keys", path: ["events", 0], keys: ["colour"] }),
          ]),
        ),
    },
    {
      name: "400 with 0 events",
      request: () => postEvents({ events: [] }),
      status: 400,
      code: "invalid_body",
      check: (expect, _response, body) =>
        expect(issues(body)).toEqual([expect.objectContaining({ code: "too_small", path: ["events"] })]),
    },
    {
      name: `400 with ${MAX_EVENTS_PER_REQUEST + 1} events`,
      request: (p) => postEvents({ events: makeEvents(p, MAX_EVENTS_PER_REQUEST + 1) }),
      status: 400,
      code: "invalid_body",
      check: (expect, _response, body) =>
        expect(issues(body)).toEqual([
          expect.objectContaining({ code: "too_big", path: ["events"], maximum: MAX_EVENTS_PER_REQUEST }),
        ]),
    },
    {
      name: "400 with data over 16 KiB",
      request: (p) => postEvents({ events: [makeEvent(p, uid("e"), { pad: "x".repeat(MAX_EVENT_DATA_BYTES) })] }),
      status: 400,
      code: "invalid_body",
      check: (expect, _response, body) =>
        expect(issues(body)).toEqual([expect.objectContaining({ code: "custom", path: ["events", 0, "data"] })]),
    },
  ];

  it.for(cases)("$name, nothing enqueued", async (c, { expect }) => {
    const response = await c.request(uid("refused"));
    expect(response.status).toBe(c.status);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await readError(response);
    expect(body.error.code).toBe(c.code);
    expect(body.error.message.length).toBeGreaterThan(0);
    c.check?.(expect, response, body);
    expect(sends.sendBatch).not.toHaveBeenCalled();
    expect(sends.send).not.toHaveBeenCalled();
  });

  it("413 on a chunked body with no length, cut off while streaming; nothing enqueued", async ({ expect }) => {
    const { stream, pulled } = endlessBody(8 * MIB);
    const request = new Request(`${BASE_URL}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" },
      body: stream,
    });
    expect(request.headers.get("content-length")).toBeNull();
    const response = await exports.default.fetch(request);
    expect(response.status).toBe(413);
    expect((await readError(response)).error.code).toBe("payload_too_large");
    // The edge stopped reading soon after the limit instead of buffering all 8 MiB.
    expect(pulled.bytes).toBeGreaterThan(MIB);
    expect(pulled.bytes).toBeLessThan(2 * MIB);
    expect(sends.sendBatch).not.toHaveBeenCalled();
  });

  it("accepts the limits themselves: 1000 events, data of exactly 16 KiB, JSON with a charset", async ({ expect }) => {
    const projectId = uid("limits");
    sends.sendBatch.mockResolvedValue(SENT);
    const many = await postEvents({ events: makeEvents(projectId, MAX_EVENTS_PER_REQUEST) });
    expect(many.status).toBe(202);
    // {"pad":"…"} is 10 bytes of JSON around the padding.
    const data = { pad: "x".repeat(MAX_EVENT_DATA_BYTES - 10) };
    expect(JSON.stringify(data).length).toBe(MAX_EVENT_DATA_BYTES);
    const full = await postEvents(
      { events: [makeEvent(projectId, uid("e"), data)] },
      {
        contentType: "application/json; charset=utf-8",
      },
    );
    expect(full.status).toBe(202);
    expect(await full.json()).toEqual({ accepted: 1 });
  });

  it("row 1: queue send fails → 503 + Retry-After, nothing reported accepted; client retry with same ids → one row each", async ({
    expect,
  }) => {
    const projectId = uid("row1");
    const body = { events: makeEvents(projectId, 20) };
    sends.sendBatch.mockRejectedValueOnce(new Error("Queue send failed: 429 Too Many Requests"));

    const refused = await postEvents(body);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const error = await readError(refused);
    expect(error.error.code).toBe("queue_unavailable");
    expect(error).not.toHaveProperty("accepted");

    const retried = await postEvents(body);
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual({ accepted: 20 });
    expect(await waitForRows(projectId, 20)).toBe(20);
    const ids = await env.DB.prepare("SELECT COUNT(DISTINCT id) AS n FROM runtime_events WHERE project_id = ?")
      .bind(projectId)
      .first<{ n: number }>();
    expect(ids?.n).toBe(20);
  });

  it("row 1, coalesced: a shared send that fails answers 503 + Retry-After to every request it carried; their retries store one row each", async ({
    expect,
  }) => {
    const projectId = uid("row1-shared");
    // The first request's send is held, so the requests that arrive meanwhile wait to share the next
    // send (lib/send-coalescer.ts), and that one fails.
    const held = Promise.withResolvers<void>();
    sends.sendBatch
      .mockImplementationOnce(async (messages, options) => {
        await held.promise;
        return realSendBatch(messages, options);
      })
      .mockRejectedValueOnce(new Error("Queue send failed: 429 Too Many Requests"));
    const start = (await ingestSends()).requests;
    const first = postEvents({ events: [makeEvent(projectId, `${projectId}-first`)] });
    await vi.waitUntil(async () => (await ingestSends()).requests >= start + 1, WAIT);
    const bodies = Array.from({ length: 4 }, (_, i) => ({ events: [makeEvent(projectId, `${projectId}-s${i}`)] }));
    const shared = bodies.map((body) => postEvents(body));
    // Every one of them has handed its event to the sender (and joined the group) before the first send settles.
    await vi.waitUntil(async () => (await ingestSends()).requests >= start + 1 + bodies.length, WAIT);
    held.resolve();

    const [firstAnswer, ...answers] = await Promise.all([first, ...shared]);
    expect(firstAnswer?.status).toBe(202);
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
      const error = await readError(answer);
      expect(error.error.code).toBe("queue_unavailable");
      expect(error).not.toHaveProperty("accepted");
    }
    // They were one send of one message carrying all four events: the one that failed.
    expect(sends.sendBatch).toHaveBeenCalledTimes(2);
    const failed = [...(sends.sendBatch.mock.calls[1]?.[0] ?? [])];
    expect(failed).toHaveLength(1);
    expect(TelemetryEventsEnvelopeSchema.parse(failed[0]?.body).events.map((event) => event.id)).toEqual(
      expect.arrayContaining(bodies.map((body) => body.events[0]?.id)),
    );
    expect(TelemetryEventsEnvelopeSchema.parse(failed[0]?.body).events).toHaveLength(bodies.length);

    const retried = await Promise.all(bodies.map((body) => postEvents(body)));
    expect(retried.map((answer) => answer.status)).toEqual([202, 202, 202, 202]);
    expect(await waitForRows(projectId, 5)).toBe(5);
    const ids = await env.DB.prepare("SELECT COUNT(DISTINCT id) AS n FROM runtime_events WHERE project_id = ?")
      .bind(projectId)
      .first<{ n: number }>();
    expect(ids?.n).toBe(5);
  });

  it("row 1: a send failing after part of a large request was enqueued → 503; the retry still stores one row each", async ({
    expect,
  }) => {
    const projectId = uid("row1-partial");
    const shardReplies = observeShardIngests();
    // ~1 MiB of events: several sendBatch calls, of which the second fails.
    const body = { events: makeEvents(projectId, 60, { dataBytes: 16_000 }) };
    sends.sendBatch
      .mockImplementationOnce(realSendBatch)
      .mockRejectedValueOnce(new Error("Queue send failed: 503 Service Unavailable"));

    const refused = await postEvents(body);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(sends.sendBatch.mock.calls.length).toBeGreaterThan(2);
    // The contract says a 5xx "has enqueued nothing", but the batches are sent in parallel and
    // Queues have no multi-call transaction: every batch but the failed one did go out. What must
    // hold is that nobody was told "accepted", and that the client's retry stores each event once.
    const enqueuedByRefused = sends.sendBatch.mock.calls
      .filter((_call, index) => index !== 1)
      .flatMap(([messages]) => [...messages])
      .reduce((sum, message) => sum + TelemetryEventsEnvelopeSchema.parse(message.body).events.length, 0);
    expect(enqueuedByRefused).toBeGreaterThan(0);

    const retried = await postEvents(body);
    expect(retried.status).toBe(202);
    expect(await waitForRows(projectId, 60)).toBe(60);
    // Both deliveries reach the shards: 60 events stored once, the early part dropped as duplicates.
    expect(await shardReplies.waitFor(projectId, 60 + enqueuedByRefused)).toMatchObject({
      stored: 60,
      duplicates: enqueuedByRefused,
      failed: 0,
    });
    expect(await countRows(projectId)).toBe(60);
  });
});
