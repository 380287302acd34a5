import { evictAllDurableObjects, evictDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, it, vi } from "vitest";
import { objectKeyOf } from "../platform/local/local-bootstrap.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { localPlatform } from "../platform/local/local-runtime.ts";
import { tenantObjectName } from "../platform/local/tenant-gateway.ts";
import {
  ADMIN,
  BASE_URL,
  deployAndWait,
  projectId,
  realtimeManifest,
  sampleManifest,
  tenant,
  tenantJson,
} from "./deploy-helpers.ts";

/**
 * Durable Objects on the local platform behave as on Cloudflare, with real tenant code
 * (examples/realtime-tenant) deployed through the webhook and run by workerd: WebSockets
 * returned from a Durable Object's fetch (plain and hibernatable, across an eviction), alarms
 * (set, get, delete, fire, retried on throw, metered), and a WorkerEntrypoint default export.
 */

/** Opens a WebSocket to the tenant and returns it with a queue of received messages. */
async function connect(project: string, path: string) {
  const response = await exports.default.fetch(`${BASE_URL}/t/${project}${path}`, {
    headers: { upgrade: "websocket" },
  });
  if (response.status !== 101 || !response.webSocket) {
    throw new Error(`upgrade ${path} → ${response.status}: ${await response.text()}`);
  }
  const ws = response.webSocket;
  const received: string[] = [];
  ws.addEventListener("message", (event) => {
    received.push(String(event.data));
  });
  ws.accept();
  return {
    ws,
    received,
    /** Sends and waits for the `count`-th message overall. */
    async exchange(message: string, count = received.length + 1): Promise<string> {
      ws.send(message);
      await vi.waitUntil(() => received.length >= count, { timeout: 5_000, interval: 20 });
      return received[count - 1] ?? "";
    },
  };
}

/** A manifest of one module, `index.js`, binding each class under its own name. */
function oneModule(project: string, main: string, classes: string[]): DeployManifest {
  return {
    project_id: project,
    compatibility_date: "2026-11-01",
    main_module: "index.js",
    modules: [{ name: "index.js", type: "esm", content: main }],
    config:
      classes.length === 0
        ? {}
        : {
            durable_objects: { bindings: classes.map((name) => ({ name, class_name: name })) },
            migrations: [{ tag: "v1", new_sqlite_classes: classes }],
          },
  };
}

/**
 * Waits until the project's stored `do_usage` events, grouped by outcome (for one handler, or
 * all), are exactly `expected`: metering goes through the telemetry pipeline, so it lands a moment later.
 */
async function waitForUsage(project: string, handler: string | null, expected: Record<string, number>) {
  const want = JSON.stringify(expected);
  let seen = "";
  await vi
    .waitUntil(
      async () => {
        const { results } = await env.DB.prepare(
          `SELECT json_extract(data, '$.outcome') AS outcome, COUNT(*) AS n FROM runtime_events
         WHERE project_id = ?1 AND type = 'do_usage' AND (?2 IS NULL OR json_extract(data, '$.handler') = ?2)
         GROUP BY 1 ORDER BY 1`,
        )
          .bind(project, handler)
          .all<{ outcome: string; n: number }>();
        seen = JSON.stringify(Object.fromEntries(results.map((row) => [row.outcome, row.n])));
        return seen === want;
      },
      { timeout: 15_000, interval: 200 },
    )
    .catch(() => {
      throw new Error(`usage of ${project} (${handler ?? "all handlers"}): wanted ${want}, saw ${seen}`);
    });
}

describe("Durable Objects on the local platform", () => {
  it("a WorkerEntrypoint default export serves fetch", async ({ expect }) => {
    const project = projectId("rt-entry");
    await deployAndWait(realtimeManifest(project));
    expect(await tenantJson(project, "/")).toEqual({ app: "realtime-tenant" });
    expect((await tenant(project, "/nope")).status).toBe(404);
  });

  it("a WebSocket message round-trips through a hibernatable room, and the room survives eviction", async ({
    expect,
  }) => {
    const project = projectId("rt-ws");
    await deployAndWait(realtimeManifest(project));
    const alice = await connect(project, "/room/lobby");
    const bob = await connect(project, "/room/lobby");
    expect(JSON.parse(await alice.exchange("hello"))).toEqual({ message: "hello", n: 1 });
    await vi.waitUntil(() => bob.received.length === 1, { timeout: 5_000, interval: 20 });
    expect(JSON.parse(bob.received[0] ?? "")).toEqual({ message: "hello", n: 1 });

    const before = await tenantJson<{ instance: string }>(project, "/room/lobby");

    // Hibernation: every object (the host and, recursively, its facet) is torn down, the sockets
    // stay open; the next message starts the room again. evictDurableObject(host) alone leaves
    // the facet running, so it would not prove anything.
    await evictAllDurableObjects({ webSockets: "hibernate" });
    expect(JSON.parse(await bob.exchange("after sleep", 2))).toEqual({ message: "after sleep", n: 2 });
    await vi.waitUntil(() => alice.received.length === 2, { timeout: 5_000, interval: 20 });
    const after = await tenantJson<{ instance: string }>(project, "/room/lobby");
    expect(after).toEqual({ sockets: 2, messages: 2, instance: expect.any(String) });
    expect(after.instance).not.toBe(before.instance);
    alice.ws.close(1000, "bye");
    bob.ws.close(1000, "bye");

    // Each hibernatable WebSocket event is a metered invocation, before and after the eviction.
    await waitForUsage(project, "webSocketMessage", { ok: 2 });
  });

  it("a plain WebSocket (server.accept) returned by a Durable Object's fetch round-trips", async ({ expect }) => {
    const project = projectId("rt-plain");
    await deployAndWait(realtimeManifest(project));
    const socket = await connect(project, "/room/plain?mode=plain");
    expect(await socket.exchange("ping")).toBe("plain:ping");
    expect(await socket.exchange("pong")).toBe("plain:pong");
    socket.ws.close(1000, "bye");
  });

  it("an alarm is set, read, fired and metered as `alarm`; a deleted alarm does not fire", async ({ expect }) => {
    const project = projectId("rt-alarm");
    await deployAndWait(realtimeManifest(project));
    const armed = await (
      await exports.default.fetch(`${BASE_URL}/t/${project}/ticker/t1/arm?in=300`, { method: "POST" })
    ).json<{ alarm: number | null }>();
    expect(armed.alarm).toBeGreaterThan(Date.now() - 1_000);
    await vi.waitUntil(async () => (await tenantJson<{ fired: number }>(project, "/ticker/t1")).fired === 1, {
      timeout: 10_000,
      interval: 100,
    });
    expect(await tenantJson(project, "/ticker/t1")).toEqual({ alarm: null, fired: 1, attempts: 1 });

    await exports.default.fetch(`${BASE_URL}/t/${project}/ticker/t2/arm?in=60000`, { method: "POST" });
    const deleted = await exports.default.fetch(`${BASE_URL}/t/${project}/ticker/t2/alarm`, { method: "DELETE" });
    expect(await deleted.json()).toEqual({ alarm: null, fired: 0, attempts: 0 });

    await waitForUsage(project, "alarm", { ok: 1 });
  });

  it("an alarm that throws is retried by the runtime until it succeeds", async ({ expect }) => {
    const project = projectId("rt-retry");
    await deployAndWait(realtimeManifest(project));
    await exports.default.fetch(`${BASE_URL}/t/${project}/ticker/r1/arm?in=50&fail=1`, { method: "POST" });
    await vi.waitUntil(async () => (await tenantJson<{ fired: number }>(project, "/ticker/r1")).fired === 1, {
      timeout: 20_000,
      interval: 200,
    });
    expect(await tenantJson(project, "/ticker/r1")).toEqual({ alarm: null, fired: 1, attempts: 2 });
    await waitForUsage(project, "alarm", { error: 1, ok: 1 });
  }, 40_000);

  it("a tenant with a compatibility date before 2024-04-03 (no RPC on bindings) reaches its Durable Objects, metered", async ({
    expect,
  }) => {
    const project = projectId("rt-old");
    await deployAndWait({ ...sampleManifest(project, "v1"), compatibility_date: "2023-05-18" });
    expect(await tenantJson(project, "/counter/old")).toEqual({ count: 1, version: "v1" });
    expect(await tenantJson(project, "/counter/old")).toEqual({ count: 2, version: "v1" });
    await waitForUsage(project, null, { ok: 2 });
  });

  it("GET do-usage reflects invocations stored so far, without an enforcement cycle, and says how fresh it is", async ({
    expect,
  }) => {
    const project = projectId("rt-usage");
    await deployAndWait(sampleManifest(project, "v1"));
    for (let i = 1; i <= 3; i++) expect(await tenantJson(project, "/counter/u?work=20")).toMatchObject({ count: i });
    type Usage = { invocations: number; wall_ms: number; as_of: number; source: string; lag_ms: number };
    let usage: Usage | undefined;
    const asked = Date.now();
    await vi.waitUntil(
      async () => {
        const response = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}/do-usage`, { headers: ADMIN });
        usage = await response.json<Usage>();
        return usage.invocations === 3;
      },
      { timeout: 15_000, interval: 200 },
    );
    expect(usage).toMatchObject({ source: "runtime_events", lag_ms: 1_200 });
    expect(usage?.wall_ms).toBeGreaterThanOrEqual(60);
    expect(usage?.as_of).toBeGreaterThanOrEqual(asked);
  });

  it("a redeploy reaches a facet that kept running while its host was evicted (the new code answers)", async ({
    expect,
  }) => {
    const project = projectId("rt-evict");
    await deployAndWait(sampleManifest(project, "v1"));
    expect(await tenantJson(project, "/counter/e")).toEqual({ count: 1, version: "v1" });
    // Evicting only the host leaves its facet running; the host forgets everything in memory.
    const namespace = (await localPlatform(env, project).current())?.classes.Counter ?? "";
    await evictDurableObject(env.TENANT_OBJECT_HOST.getByName(tenantObjectName(project, namespace, objectKeyOf("e"))));
    await deployAndWait(sampleManifest(project, "v2"));
    expect(await tenantJson(project, "/counter/e")).toEqual({ count: 2, version: "v2" });
  });

  it("a tenant importing cloudflare:email (as the agents SDK does) starts and serves, though dynamic Workers lack it", async ({
    expect,
  }) => {
    const project = projectId("rt-email");
    const main = `import { EmailMessage } from "cloudflare:email";
export default {
  fetch() {
    const message = new EmailMessage("a@example.com", "b@example.com", "Subject: hi\\r\\n\\r\\nhello");
    return Response.json({ to: message.to });
  },
};
`;
    await deployAndWait(oneModule(project, main, []));
    expect(await tenantJson(project, "/")).toEqual({ to: "b@example.com" });
  });

  it("setAlarm without await, and txn.setAlarm inside a transaction, arm the host's alarm", async ({ expect }) => {
    const project = projectId("rt-noawait");
    const main = `import { DurableObject } from "cloudflare:workers";
export class T extends DurableObject {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/arm") {
      this.ctx.storage.setAlarm(Date.now() + 200);
      return Response.json({ armed: true });
    }
    if (path === "/arm-in-transaction") {
      await this.ctx.storage.transaction(async (txn) => {
        await txn.put("fired", 0);
        await txn.setAlarm(Date.now() + 200);
      });
      return Response.json({ armed: true });
    }
    return Response.json({ fired: (await this.ctx.storage.get("fired")) ?? 0 });
  }
  async alarm() {
    await this.ctx.storage.put("fired", 1);
  }
}
export default { fetch: (request, env) => env.T.getByName("x").fetch(request) };
`;
    await deployAndWait(oneModule(project, main, ["T"]));
    expect(await tenantJson(project, "/arm")).toEqual({ armed: true });
    await vi.waitUntil(async () => (await tenantJson<{ fired: number }>(project, "/")).fired === 1, {
      timeout: 10_000,
      interval: 100,
    });
    // The same from inside a transaction (txn.setAlarm).
    expect(await tenantJson(project, "/arm-in-transaction")).toEqual({ armed: true });
    expect(await tenantJson(project, "/")).toEqual({ fired: 0 });
    await vi.waitUntil(async () => (await tenantJson<{ fired: number }>(project, "/")).fired === 1, {
      timeout: 10_000,
      interval: 100,
    });
  });

  it("inside the object, ctx.id is the id the tenant's stubs use, with the name it was reached by", async ({
    expect,
  }) => {
    const project = projectId("rt-ids");
    const main = `import { DurableObject } from "cloudflare:workers";
export class T extends DurableObject {
  async fetch() {
    return Response.json({ id: this.ctx.id.toString(), name: this.ctx.id.name ?? null });
  }
  async whoami() {
    return this.ctx.id.toString();
  }
}
export default {
  async fetch(request, env) {
    const inside = await (await env.T.getByName("room-7").fetch(request)).json();
    return Response.json({ inside, rpc: await env.T.getByName("room-7").whoami(), outside: env.T.idFromName("room-7").toString() });
  },
};
`;
    await deployAndWait(oneModule(project, main, ["T"]));
    const id = objectKeyOf("room-7");
    expect(await tenantJson(project, "/")).toEqual({ inside: { id, name: "room-7" }, rpc: id, outside: id });
  });
});
