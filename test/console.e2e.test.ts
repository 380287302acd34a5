/**
 * The on-call console's server side (issue 16): the session cookie as one more way to present the
 * admin token, its CSRF rules, the console's static assets with their security headers, and the
 * dead-letter counts the console shows. The browser side is scripts/console-test.ts (Chromium).
 */
import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { QUEUES } from "../lib/queues.ts";
import { CONSOLE_CSP } from "../lib/console-headers.ts";
import { SESSION_COOKIE, SESSION_TTL_MS, signSession } from "../producers/session.ts";
import { ADMIN_TOKEN, BASE_URL, deliver, readError, uid } from "./helpers.ts";

const ORIGIN = new URL(BASE_URL).origin;
const TELEMETRY_QUEUE = QUEUES.telemetry.name;

function call(method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  return exports.default.fetch(`${BASE_URL}${path}`, {
    method,
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** Signs in as the console does and returns the `Cookie` header value. */
async function signIn(): Promise<string> {
  const response = await call("POST", "/v1/admin/session", {
    headers: { origin: ORIGIN, "x-shipyard-csrf": "1" },
    body: { token: ADMIN_TOKEN },
  });
  if (response.status !== 200) throw new Error(`sign-in → ${response.status}: ${await response.text()}`);
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0] ?? "";
}

/** The console's own headers on a cookie-authenticated request. */
function consoleHeaders(cookie: string, extra: Record<string, string> = {}): Record<string, string> {
  return { cookie, origin: ORIGIN, "x-shipyard-csrf": "1", ...extra };
}

/** A cookie-authenticated state change: one raw message onto the telemetry dead-letter queue. */
function sendProbe(headers: Record<string, string>): Promise<Response> {
  return call("POST", `/v1/admin/queues/${TELEMETRY_QUEUE}-dlq/send`, {
    headers,
    body: { body: { csrf: uid("probe") } },
  });
}

describe("console session", () => {
  it("sign-in sets an HttpOnly, Secure, SameSite=Strict cookie that carries no secret", async ({ expect }) => {
    const response = await call("POST", "/v1/admin/session", {
      headers: { origin: ORIGIN, "x-shipyard-csrf": "1" },
      body: { token: ADMIN_TOKEN },
    });
    expect(response.status).toBe(200);
    const body = await response.json<{ principal: string; via: string; expires_at: number }>();
    expect(body.principal).toMatch(/^admin:[0-9a-f]{16}$/);
    expect(body.via).toBe("session");
    const cookie = response.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=v1\\.\\d+\\.[0-9a-f]{64}; `));
    for (const attribute of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", `Max-Age=${SESSION_TTL_MS / 1000}`]) {
      expect(cookie).toContain(attribute);
    }
    expect(cookie).not.toContain(ADMIN_TOKEN);
  });

  it("a wrong token is 401 and sets nothing; another origin is 403 before the token is looked at", async ({
    expect,
  }) => {
    const wrong = await call("POST", "/v1/admin/session", {
      headers: { origin: ORIGIN, "x-shipyard-csrf": "1" },
      body: { token: "nope" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const crossSite = await call("POST", "/v1/admin/session", {
      headers: { origin: "https://evil.example", "x-shipyard-csrf": "1" },
      body: { token: ADMIN_TOKEN },
    });
    expect(crossSite.status).toBe(403);
    expect((await readError(crossSite)).error.code).toBe("csrf_rejected");
    expect(crossSite.headers.get("set-cookie")).toBeNull();
  });

  it("the cookie authenticates admin reads as the same principal as the bearer token", async ({ expect }) => {
    const cookie = await signIn();
    const viaCookie = await call("GET", "/v1/admin/session", { headers: { cookie } });
    expect(viaCookie.status).toBe(200);
    const session = await viaCookie.json<{ principal: string; via: string; expires_at: number }>();
    expect(session.via).toBe("session");
    expect(session.expires_at).toBeGreaterThan(Date.now());
    const viaBearer = await call("GET", "/v1/admin/session", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(await viaBearer.json()).toMatchObject({ principal: session.principal, via: "bearer", expires_at: null });
    // An admin route of the existing API, unchanged, reads with the cookie.
    expect((await call("GET", "/v1/admin/dlq?limit=1", { headers: { cookie } })).status).toBe(200);
  });

  it("the cookie is not an ingest credential", async ({ expect }) => {
    const cookie = await signIn();
    const response = await call("GET", "/v1/counters/post/some-key", { headers: { cookie } });
    expect(response.status).toBe(401);
  });

  it("a state change with the cookie needs this origin and the CSRF header", async ({ expect }) => {
    const cookie = await signIn();
    const cases: [string, Record<string, string>][] = [
      ["no Origin", { cookie, "x-shipyard-csrf": "1" }],
      ["another origin", { cookie, origin: "https://evil.example", "x-shipyard-csrf": "1" }],
      ["a sibling origin", { cookie, origin: "http://admin.shipyard.test", "x-shipyard-csrf": "1" }],
      ["no CSRF header", { cookie, origin: ORIGIN }],
    ];
    for (const [name, headers] of cases) {
      const response = await sendProbe(headers);
      expect(response.status, name).toBe(403);
      expect((await readError(response)).error.code, name).toBe("csrf_rejected");
    }
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE type = 'queue.sent'").first<{
      n: number;
    }>();
    expect((await sendProbe(consoleHeaders(cookie))).status).toBe(202);
    const after = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE type = 'queue.sent'").first<{
      n: number;
    }>();
    // Audited like any admin action, under the admin's principal.
    expect((after?.n ?? 0) - (before?.n ?? 0)).toBeGreaterThanOrEqual(1);
  });

  it("a bearer-token client needs no CSRF header (the CLI and scripts are unchanged)", async ({ expect }) => {
    const response = await call("POST", `/v1/admin/queues/${TELEMETRY_QUEUE}-dlq/send`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { body: { bearer: uid("probe") } },
    });
    expect(response.status).toBe(202);
  });

  it("a tampered, expired or foreign session is 401", async ({ expect }) => {
    const cookie = await signIn();
    const value = cookie.slice(SESSION_COOKIE.length + 1);
    const flipped = value.slice(0, -1) + (value.endsWith("0") ? "1" : "0");
    const expired = await signSession(ADMIN_TOKEN, Date.now() - 1);
    const otherSecret = await signSession("another-admin-token", Date.now() + 60_000);
    // Longer than a session may last: refused even with a valid signature.
    const tooLong = await signSession(ADMIN_TOKEN, Date.now() + SESSION_TTL_MS * 2);
    for (const bad of [flipped, expired, otherSecret, tooLong, "garbage"]) {
      const response = await call("GET", "/v1/admin/dlq?limit=1", { headers: { cookie: `${SESSION_COOKIE}=${bad}` } });
      expect(response.status, bad).toBe(401);
    }
  });

  it("sign-out clears the cookie, is audited, and needs the CSRF check when a cookie is sent", async ({ expect }) => {
    const cookie = await signIn();
    const crossSite = await call("DELETE", "/v1/admin/session", {
      headers: { cookie, origin: "https://evil.example", "x-shipyard-csrf": "1" },
    });
    expect(crossSite.status).toBe(403);
    const response = await call("DELETE", "/v1/admin/session", { headers: consoleHeaders(cookie) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ signed_out: true });
    expect(response.headers.get("set-cookie")).toMatch(new RegExp(`^${SESSION_COOKIE}=; .*Max-Age=0`));
    const entries = await env.DB.prepare(
      "SELECT type FROM audit_log WHERE type IN ('session.created', 'session.ended') ORDER BY at DESC LIMIT 2",
    ).all<{ type: string }>();
    expect(entries.results.map((row) => row.type)).toContain("session.ended");
    // Without any cookie sign-out still answers (it must never fail), and ended nothing.
    expect(await (await call("DELETE", "/v1/admin/session")).json()).toEqual({ signed_out: false });
  });
});

describe("console assets", () => {
  it("GET /console serves the app with a strict CSP; its script and stylesheet are served too", async ({ expect }) => {
    const page = await call("GET", "/console");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=/);
    const assets = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((match) => match[1] ?? "");
    expect(assets.some((path) => path.endsWith(".js"))).toBe(true);
    expect(assets.some((path) => path.endsWith(".css"))).toBe(true);
    for (const path of assets) {
      const asset = await call("GET", path);
      expect(asset.status, path).toBe(200);
      expect(asset.headers.get("content-security-policy"), path).toBe(CONSOLE_CSP);
      await asset.arrayBuffer();
    }
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(CONSOLE_CSP).not.toContain("unsafe-inline");
    expect(CONSOLE_CSP).not.toContain("unsafe-eval");
  });

  it("an unknown console file is the contract's 404, a POST is 405, and API routes are still the Worker's", async ({
    expect,
  }) => {
    const missing = await call("GET", "/console/assets/nope.js");
    expect(missing.status).toBe(404);
    expect((await readError(missing)).error.code).toBe("not_found");
    const post = await call("POST", "/console");
    expect(post.status).toBe(405);
    expect((await call("GET", "/v1/health")).status).toBe(200);
    expect((await call("GET", "/t/no-such-project/")).status).toBe(404);
  });
});

describe("GET /v1/admin/dlq/stats and the reason filter", () => {
  it("counts per source queue and per reason; reason narrows the list", async ({ expect }) => {
    const projectId = uid("stats");
    const bodies = [
      { type: "telemetry.events", project_id: projectId, events: "not a list" },
      { type: "telemetry.events", project_id: projectId, events: "still not a list" },
      { type: "no.such.type", project_id: projectId },
    ];
    const messages = bodies.map((body) => ({ id: uid("msg"), timestamp: new Date(), attempts: 1, body }));
    const result = await deliver(messages, env, `${TELEMETRY_QUEUE}-dlq`);
    expect(result.retryMessages).toEqual([]);
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const stats = await (
      await call("GET", `/v1/admin/dlq/stats?project_id=${projectId}`, { headers })
    ).json<{
      total: number;
      by_queue: { queue: string; count: number }[];
      by_reason: { reason: string; count: number }[];
    }>();
    expect(stats.total).toBe(3);
    expect(stats.by_queue).toEqual([{ queue: TELEMETRY_QUEUE, count: 3 }]);
    expect(stats.by_reason.reduce((sum, row) => sum + row.count, 0)).toBe(3);
    const top = stats.by_reason[0];
    expect(top).toBeDefined();
    const reason = top?.reason ?? "";
    const list = await (
      await call("GET", `/v1/admin/dlq?project_id=${projectId}&reason=${encodeURIComponent(reason)}`, { headers })
    ).json<{ items: { last_error: string }[] }>();
    expect(list.items.length).toBe(top?.count);
    for (const item of list.items) expect(item.last_error).toContain(reason);
    const none = await (
      await call("GET", `/v1/admin/dlq/stats?project_id=${projectId}&reason=${encodeURIComponent(uid("absent"))}`, {
        headers,
      })
    ).json<{ total: number }>();
    expect(none.total).toBe(0);

    // A redrive (and a purge) by reason takes exactly those messages: the filter reaches the task.
    const dryRun = await call("POST", "/v1/admin/dlq/redrive", {
      headers,
      body: { filter: { project_id: projectId, reason }, dry_run: true },
    });
    expect(dryRun.status).toBe(202);
    expect((await dryRun.json<{ total: number }>()).total).toBe(top?.count);
    const purge = await call("POST", "/v1/admin/dlq/purge", {
      headers,
      body: { filter: { project_id: projectId, reason }, dry_run: true },
    });
    expect((await purge.json<{ matched: number }>()).matched).toBe(top?.count);
  });
});
