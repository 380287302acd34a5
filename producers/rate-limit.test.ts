import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { type ExpectStatic, type MockInstance, afterEach, beforeEach, describe, it, vi } from "vitest";
import { z } from "zod";
import type { RateLimit } from "../lib/config.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { AcceptedSchema } from "../schemas/http.schema.ts";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";
import { credentialFingerprint } from "./auth.ts";
import { rateLimitShardName } from "../durable/rate-limit-shard.do.ts";
import { checkRateLimit } from "./rate-limiter.ts";
import { createRouter } from "./router.ts";

const BASE = "http://shipyard.test";
const ADMIN = { authorization: "Bearer dev-admin-token" };
const T0 = 1_800_000_000_000;
/** The Worker's own router, driven with a reconfigured env (`limitedEnv`). */
const router = createRouter();

/** Spies this file made, restored one by one: other test files may share the isolate and have their own. */
const spies: { mockRestore(): void }[] = [];
function track<S extends { mockRestore(): void }>(created: S): S {
  spies.push(created);
  return created;
}

afterEach(() => {
  // Only this file's fault points: disarming all of them would disarm another file's armed faults.
  disarmFaults("rate_limit.shard");
  disarmFaults("rate_limit.d1");
  for (const created of spies.splice(0)) created.mockRestore();
});

/** An ingest key of this test alone, so its window is shared with nothing else. */
function newKey(): string {
  return `rl-test-key-${crypto.randomUUID()}`;
}

async function keyId(key: string): Promise<string> {
  return `key:${await credentialFingerprint(key)}`;
}

/** The test env with `keys` as INGEST_KEYS and small limits: the real Worker, reconfigured. */
function limitedEnv(keys: string[], limits: Partial<Record<RouteClass, RateLimit>>): Env {
  const big = { limit: 1_000_000, window_s: 60 };
  return {
    ...env,
    INGEST_KEYS: keys.join(","),
    RATE_LIMITS: JSON.stringify({ ingest: big, webhook: big, admin: big, auth_failures: big, ...limits }),
  };
}

function eventsBody(count = 1): string {
  const events = Array.from({ length: count }, () => ({
    id: crypto.randomUUID(),
    project_id: "rl-test",
    type: "request",
    ts: T0,
    data: {},
  }));
  return JSON.stringify({ events });
}

async function postEvents(
  variant: Env,
  key: string,
  body = eventsBody(),
  contentType = "application/json",
): Promise<Response> {
  const request = new Request(`${BASE}/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": contentType },
    body,
  });
  return router.fetch(request, variant, createExecutionContext());
}

/**
 * `X-RateLimit-Reset` is the seconds until the current fixed window ends (windows are aligned to
 * the epoch, so it depends on when the test runs): 1..window_s whenever something is counted.
 */
function expectResetWithin(response: Response, windowS: number, expect: ExpectStatic): void {
  const reset = Number(response.headers.get("X-RateLimit-Reset"));
  expect(reset).toBeGreaterThanOrEqual(1);
  expect(reset).toBeLessThanOrEqual(windowS);
}

function limitHeaders(response: Response) {
  return {
    limit: response.headers.get("X-RateLimit-Limit"),
    remaining: response.headers.get("X-RateLimit-Remaining"),
    reset: response.headers.get("X-RateLimit-Reset"),
  };
}

const LogLineSchema = z.looseObject({ code: z.string() });

/** The structured log lines (lib/log.ts) a spied console method printed, with the given `code`. */
function logLines(spy: { mock: { calls: unknown[][] } }, code: string): Record<string, unknown>[] {
  return spy.mock.calls.flatMap((call) => {
    if (typeof call[0] !== "string") return [];
    const line = LogLineSchema.safeParse(JSON.parse(call[0]));
    return line.success && line.data.code === code ? [line.data] : [];
  });
}

/** What the runtime throws when a Durable Object has too many requests queued. */
function overloadedError(): Error {
  return Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true });
}

describe("rate limiting at the edge", () => {
  it("puts X-RateLimit-* on 202 and on 400 answers from POST /v1/events (real configuration)", async ({ expect }) => {
    const accepted = await exports.default.fetch(`${BASE}/v1/events`, {
      method: "POST",
      headers: { authorization: "Bearer dev-ingest-key", "content-type": "application/json" },
      body: eventsBody(),
    });
    expect(accepted.status).toBe(202);
    const headers = limitHeaders(accepted);
    expect(headers.limit).toBe("1000000");
    expect(Number(headers.remaining)).toBeLessThan(1_000_000);
    expect(Number(headers.reset)).toBeGreaterThanOrEqual(1);
    expect(Number(headers.reset)).toBeLessThanOrEqual(60);

    const invalid = await exports.default.fetch(`${BASE}/v1/events`, {
      method: "POST",
      headers: { authorization: "Bearer dev-ingest-key", "content-type": "application/json" },
      body: JSON.stringify({ events: [] }),
    });
    expect(invalid.status).toBe(400);
    expect(limitHeaders(invalid).limit).toBe("1000000");
  });

  it("counts every authenticated answer, valid or not, and says so in the headers", async ({ expect }) => {
    const key = newKey();
    const variant = limitedEnv([key], { ingest: { limit: 5, window_s: 60 } });
    const accepted = await postEvents(variant, key);
    expect(accepted.status).toBe(202);
    expect(limitHeaders(accepted)).toMatchObject({ limit: "5", remaining: "4" });
    expectResetWithin(accepted, 60, expect);
    const invalid = await postEvents(variant, key, "{not json");
    expect(invalid.status).toBe(400);
    expect(limitHeaders(invalid)).toMatchObject({ limit: "5", remaining: "3" });
    const wrongType = await postEvents(variant, key, eventsBody(), "text/plain");
    expect(wrongType.status).toBe(415);
    expect(limitHeaders(wrongType)).toMatchObject({ limit: "5", remaining: "2" });
  });

  it("answers 401 and 403 before counting, without rate-limit headers", async ({ expect }) => {
    const key = newKey();
    const variant = limitedEnv([key], { ingest: { limit: 1, window_s: 60 } });
    const unknown = await postEvents(variant, "not-a-key");
    expect(unknown.status).toBe(401);
    expect(unknown.headers.has("X-RateLimit-Limit")).toBe(false);
    const admin = await postEvents(variant, "dev-admin-token");
    expect(admin.status).toBe(403);
    expect(admin.headers.has("X-RateLimit-Limit")).toBe(false);
    // Neither used the key's single slot.
    expect((await postEvents(variant, key)).status).toBe(202);
  });

  it("over the limit: 429 rate_limited with Retry-After, and nothing enqueued", async ({ expect }) => {
    const key = newKey();
    const variant = limitedEnv([key], { ingest: { limit: 2, window_s: 60 } });
    const sendBatch = track(vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch"));
    const send = track(vi.spyOn(env.TELEMETRY_QUEUE, "send"));
    expect((await postEvents(variant, key)).status).toBe(202);
    expect((await postEvents(variant, key)).status).toBe(202);
    const enqueuedBefore = sendBatch.mock.calls.length + send.mock.calls.length;
    expect(enqueuedBefore).toBeGreaterThan(0);

    const refused = await postEvents(variant, key);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: "rate_limited" } });
    const retryAfter = Number(refused.headers.get("Retry-After"));
    // Both allowed requests are in the current fixed window: a third passes once the estimate
    // (that window's count, decaying over the next window) is below 2, i.e. halfway into the
    // next window. So up to 1.5 windows, never more than two.
    expect(retryAfter).toBeGreaterThanOrEqual(31);
    expect(retryAfter).toBeLessThanOrEqual(90);
    expect(limitHeaders(refused)).toMatchObject({ limit: "2", remaining: "0" });
    expectResetWithin(refused, 60, expect);
    expect(sendBatch.mock.calls.length + send.mock.calls.length).toBe(enqueuedBefore);
  });

  it("identifies an ingest key by its fingerprint, not its position in INGEST_KEYS", async ({ expect }) => {
    const key = newKey();
    const other = newKey();
    const limits = { ingest: { limit: 1, window_s: 60 } };
    expect((await postEvents(limitedEnv([key, other], limits), key)).status).toBe(202);
    // The list reordered: the same key is still the same identity, with its slot already used.
    expect((await postEvents(limitedEnv([other, key], limits), key)).status).toBe(429);
    expect((await postEvents(limitedEnv([other, key], limits), other)).status).toBe(202);
    // What README's on-call section computes with `printf %s "$KEY" | sha256sum | cut -c1-16`.
    expect(await keyId("dev-ingest-key")).toBe("key:21dd9e3b3f1633b8");
  });

  it("counts routes without a credential by CF-Connecting-IP (webhook class)", async ({ expect }) => {
    const hookRouter = createRouter([
      {
        method: "POST",
        path: "/hook",
        summary: "test route",
        operationId: "testRoute",
        auth: "none",
        rateLimit: "webhook",
        handler: () => Response.json({ ok: true }),
        response: { status: 200, schema: AcceptedSchema },
      },
    ]);
    // On Cloudflare's edge, where the header is the connection's address (locally it is ignored).
    const variant = { ...limitedEnv([], { webhook: { limit: 1, window_s: 60 } }), CLIENT_ADDRESS: "cf-connecting-ip" };
    const hook = (ip: string) =>
      hookRouter.fetch(
        new Request(`${BASE}/hook`, { method: "POST", headers: { "CF-Connecting-IP": ip } }),
        variant,
        createExecutionContext(),
      );
    const first = `2001:db8::${crypto.randomUUID().slice(0, 4)}`;
    const second = `2001:db8:1::${crypto.randomUUID().slice(0, 4)}`;
    const allowed = await hook(first);
    expect(allowed.status).toBe(200);
    expect(limitHeaders(allowed)).toMatchObject({ limit: "1", remaining: "0" });
    expectResetWithin(allowed, 60, expect);
    expect((await hook(first)).status).toBe(429);
    expect((await hook(second)).status).toBe(200);
  });
});

describe("rate limiting when the shard is unavailable", () => {
  const rule = { limit: 3, window_s: 60 };
  // The fallback chain logs on every request; captured (and kept off the test output) here.
  let warn: MockInstance<typeof console.warn>;
  let error: MockInstance<typeof console.error>;
  beforeEach(() => {
    warn = track(vi.spyOn(console, "warn").mockImplementation(() => undefined));
    error = track(vi.spyOn(console, "error").mockImplementation(() => undefined));
  });

  it("falls back to D1 fixed windows and logs rate_limit_shard_unavailable", async ({ expect }) => {
    const identifier = `key:fallback-d1-${crypto.randomUUID()}`;
    const fired = armFault("rate_limit.shard", { when: (context) => context.identifier === identifier });
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await checkRateLimit(env, identifier, "ingest", { rule, now: T0 + i }));
    expect(fired()).toBe(5);
    expect(decisions.map((d) => d.source)).toEqual(["d1", "d1", "d1", "d1", "d1"]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    expect(decisions[3]).toMatchObject({ limit: 3, remaining: 0, retryAfterS: 60, resetS: 60 });
    const row = await env.DB.prepare("SELECT window_start, count FROM rate_limit_windows WHERE identifier = ?")
      .bind(identifier)
      .first<{ window_start: number; count: number }>();
    expect(row).toEqual({ window_start: T0 - (T0 % 60_000), count: 5 });
    expect(logLines(warn, "rate_limit_shard_unavailable")[0]).toMatchObject({
      identifier,
      route_class: "ingest",
      shard: rateLimitShardName(identifier),
      reason: "unavailable",
    });
  });

  it("then falls back to this isolate's memory, logging rate_limit_d1_unavailable, still limiting", async ({
    expect,
  }) => {
    const identifier = `key:fallback-memory-${crypto.randomUUID()}`;
    armFault("rate_limit.shard", { when: (context) => context.identifier === identifier });
    armFault("rate_limit.d1", { when: (context) => context.identifier === identifier });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await checkRateLimit(env, identifier, "ingest", { rule, now: T0 + i }));
    expect(decisions.map((d) => d.source)).toEqual(["memory", "memory", "memory", "memory"]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(logLines(error, "rate_limit_d1_unavailable")).toHaveLength(4);
    // A new window starts a new count.
    const next = await checkRateLimit(env, identifier, "ingest", { rule, now: T0 + 60_000 });
    expect(next).toMatchObject({ source: "memory", allowed: true, remaining: 2 });
  });

  it("an overloaded shard (a hot key) goes straight to memory, never to D1, logging rate_limit_shard_overloaded", async ({
    expect,
  }) => {
    const identifier = `key:overloaded-${crypto.randomUUID()}`;
    const fired = armFault("rate_limit.shard", {
      when: (context) => context.identifier === identifier,
      error: overloadedError,
    });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await checkRateLimit(env, identifier, "ingest", { rule, now: T0 + i }));
    expect(fired()).toBe(4);
    expect(decisions.map((d) => d.source)).toEqual(["memory", "memory", "memory", "memory"]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    const d1 = await env.DB.prepare("SELECT COUNT(*) AS n FROM rate_limit_windows WHERE identifier = ?")
      .bind(identifier)
      .first<{ n: number }>();
    expect(d1?.n).toBe(0);
    expect(logLines(warn, "rate_limit_shard_overloaded")).toHaveLength(4);
    expect(logLines(warn, "rate_limit_shard_unavailable")).toHaveLength(0);
  });

  it("fails open for ingest: POST /v1/events is accepted with headers while shard and D1 are down", async ({
    expect,
  }) => {
    const key = newKey();
    const identifier = await keyId(key);
    const shardFault = armFault("rate_limit.shard", { when: (context) => context.identifier === identifier });
    armFault("rate_limit.d1", { when: (context) => context.identifier === identifier });
    const sendBatch = track(vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch"));
    const response = await postEvents(limitedEnv([key], { ingest: { limit: 10, window_s: 60 } }), key);
    expect(response.status).toBe(202);
    expect(limitHeaders(response)).toMatchObject({ limit: "10", remaining: "9" });
    expect(sendBatch).toHaveBeenCalled();
    expect(shardFault()).toBe(1);
  });

  it("goes back to the shard as soon as it answers again", async ({ expect }) => {
    const identifier = `key:recovered-${crypto.randomUUID()}`;
    armFault("rate_limit.shard", { times: 1, when: (context) => context.identifier === identifier });
    expect((await checkRateLimit(env, identifier, "ingest", { rule, now: T0 })).source).toBe("d1");
    expect(await checkRateLimit(env, identifier, "ingest", { rule, now: T0 + 1 })).toMatchObject({
      source: "shard",
      allowed: true,
      remaining: 2,
    });
  });
});

function url(identifier: string, suffix = ""): string {
  return `${BASE}/v1/admin/rate-limits/${encodeURIComponent(identifier)}${suffix}`;
}

describe("on-call: /v1/admin/rate-limits/:identifier", () => {
  it("needs the admin token: 401 without it, 403 with an ingest key", async ({ expect }) => {
    for (const [path, method] of [
      [url("key:0000000000000000"), "GET"],
      [url("key:0000000000000000", "/reset"), "POST"],
    ] as const) {
      expect((await exports.default.fetch(path, { method })).status).toBe(401);
      const forbidden = await exports.default.fetch(path, {
        method,
        headers: { authorization: "Bearer dev-ingest-key" },
      });
      expect(forbidden.status).toBe(403);
      expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
    }
  });

  it("shows the current window per route class, and reset forgets it", async ({ expect }) => {
    const key = newKey();
    const identifier = await keyId(key);
    const variant = limitedEnv([key], {});
    expect((await postEvents(variant, key)).status).toBe(202);
    expect((await postEvents(variant, key)).status).toBe(202);

    const status = await exports.default.fetch(url(identifier), { headers: ADMIN });
    expect(status.status).toBe(200);
    expect(status.headers.get("X-RateLimit-Limit")).toBe("1000000");
    const body = await status.json<{ classes: Record<RouteClass, Record<string, number>> }>();
    expect(body).toMatchObject({ identifier, shard: rateLimitShardName(identifier) });
    expect(body.classes.ingest).toMatchObject({ limit: 1_000_000, window_s: 60, used: 2, remaining: 999_998 });
    expect(body.classes.ingest?.reset_s).toBeGreaterThanOrEqual(1);
    expect(body.classes.webhook).toEqual({
      limit: 1_000_000,
      window_s: 60,
      used: 0,
      remaining: 1_000_000,
      reset_s: 0,
      current_window: 0,
      previous_window: 0,
    });

    const reset = await exports.default.fetch(url(identifier, "/reset"), { method: "POST", headers: ADMIN });
    expect(reset.status).toBe(200);
    expect(await reset.json()).toEqual({
      identifier,
      shard: rateLimitShardName(identifier),
      cleared_hits: 2,
      cleared_fallback_windows: 0,
    });
    const after = await exports.default.fetch(url(identifier), { headers: ADMIN });
    expect((await after.json<{ classes: Record<RouteClass, { used: number }> }>()).classes.ingest.used).toBe(0);
  });

  it("answers 503 with Retry-After when the shard cannot be read", async ({ expect }) => {
    const identifier = `key:unreadable-${crypto.randomUUID()}`;
    armFault("rate_limit.shard", { when: (context) => context.identifier === identifier });
    const response = await exports.default.fetch(url(identifier), { headers: ADMIN });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("5");
    expect(await response.json()).toMatchObject({ error: { code: "rate_limit_shard_unavailable" } });
  });

  it("refuses an identifier that is not valid percent-encoding with 400", async ({ expect }) => {
    const response = await exports.default.fetch(`${BASE}/v1/admin/rate-limits/%E0%A4%A`, { headers: ADMIN });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "invalid_path" } });
  });

  it("is in the OpenAPI document, and rate-limited routes document 429 and the headers", async ({ expect }) => {
    const document = await (
      await exports.default.fetch(`${BASE}/v1/openapi.json`)
    ).json<{
      paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>;
    }>();
    expect(document.paths["/v1/admin/rate-limits/{identifier}"]?.get).toBeDefined();
    expect(document.paths["/v1/admin/rate-limits/{identifier}/reset"]?.post).toBeDefined();
    const events = document.paths["/v1/events"]?.post?.responses;
    expect(Object.keys(events?.["202"]?.headers ?? {})).toEqual([
      "X-RateLimit-Limit",
      "X-RateLimit-Remaining",
      "X-RateLimit-Reset",
    ]);
    expect(events?.["429"]?.headers).toHaveProperty("Retry-After");
  });
});
