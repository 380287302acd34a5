/**
 * Failed authentication rate limited per source (issue 13, docs/reliability-tenants.md rows T5.4,
 * T5.5): 401s from the router's `authenticate` and from the webhook's signature check use up the
 * source's budget; over it, every request of that source is 429 before any credential is
 * compared; other sources are untouched; locally the source is the socket, not a header.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { signWebhook } from "./webhook.ts";
import { LOCAL_SOCKET_SOURCE, clientSource } from "./client-address.ts";
import { createRouter } from "./router.ts";

const BASE = "http://shipyard.test";
const router = createRouter();
const big = { limit: 1_000_000, window_s: 60 };

/** The Worker's env behind Cloudflare's edge (the header is the source), with a small failure budget. */
function edgeEnv(failures: number): Env {
  return {
    ...env,
    CLIENT_ADDRESS: "cf-connecting-ip",
    RATE_LIMITS: JSON.stringify({
      ingest: big,
      webhook: big,
      admin: big,
      auth_failures: { limit: failures, window_s: 60 },
    }),
  };
}

/** An address of this test alone. */
function address(): string {
  return `2001:db8:${crypto.randomUUID().slice(0, 4)}::${crypto.randomUUID().slice(0, 4)}`;
}

function admin(variant: Env, ip: string, token: string): Promise<Response> {
  return router.fetch(
    new Request(`${BASE}/v1/projects`, { headers: { authorization: `Bearer ${token}`, "CF-Connecting-IP": ip } }),
    variant,
    createExecutionContext(),
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("failed authentication is rate limited per source", () => {
  it("T5.4 wrong admin tokens: 401 up to the budget, then 429 with Retry-After before any comparison, even for the right token", async ({
    expect,
  }) => {
    const variant = edgeEnv(5);
    const ip = address();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await admin(variant, ip, `wrong-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);

    const compare = vi.spyOn(crypto.subtle, "timingSafeEqual");
    const refused = await admin(variant, ip, "dev-admin-token");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: "too_many_auth_failures" } });
    expect(compare).not.toHaveBeenCalled();

    // Another source keeps its own budget, and the right token works there.
    expect((await admin(variant, address(), "dev-admin-token")).status).toBe(200);
    expect(compare).toHaveBeenCalled();
  });

  it("T5.4 the webhook's signature failures count against the same budget", async ({ expect }) => {
    const variant = edgeEnv(3);
    const ip = address();
    const body = JSON.stringify({ project_id: "auth-fail", modules: [] });
    const post = async (secret: string) => {
      const id = `msg_${crypto.randomUUID()}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = await signWebhook(secret, id, timestamp, new TextEncoder().encode(body));
      return router.fetch(
        new Request(`${BASE}/v1/deploys`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "CF-Connecting-IP": ip,
            "webhook-id": id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": signature,
          },
          body,
        }),
        variant,
        createExecutionContext(),
      );
    };
    const wrong = "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==";
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(wrong)).status);
    expect(statuses).toEqual([401, 401, 401]);
    const refused = await post(env.WEBHOOK_SECRET);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: "too_many_auth_failures" } });
    // The ingest routes of the same source are refused too: one budget per source.
    const ingest = await router.fetch(
      new Request(`${BASE}/v1/counters/post/1`, {
        headers: { authorization: "Bearer dev-ingest-key", "CF-Connecting-IP": ip },
      }),
      variant,
      createExecutionContext(),
    );
    expect(ingest.status).toBe(429);
  });

  it("T5.5 locally the source is the socket: a client-supplied CF-Connecting-IP is ignored", ({ expect }) => {
    const forged = new Request(`${BASE}/v1/deploys`, { headers: { "CF-Connecting-IP": "203.0.113.9" } });
    // wrangler.toml's local setting: every request is the loopback socket's, whatever it claims.
    expect(env.CLIENT_ADDRESS).toBe("socket");
    expect(clientSource(forged, env)).toBe(LOCAL_SOCKET_SOURCE);
    expect(clientSource(new Request(BASE), env)).toBe(LOCAL_SOCKET_SOURCE);
    // On Cloudflare the edge sets the header from the connection: it is the source there.
    const edge = { ...env, CLIENT_ADDRESS: "cf-connecting-ip" };
    expect(clientSource(forged, edge)).toBe("ip:203.0.113.9");
    expect(clientSource(new Request(BASE), edge)).toBe("ip:unknown");
    // Nothing that is not an address becomes a key.
    const junk = new Request(BASE, { headers: { "CF-Connecting-IP": "x".repeat(2_000) } });
    expect(clientSource(junk, edge)).toBe("ip:unknown");
  });
});
