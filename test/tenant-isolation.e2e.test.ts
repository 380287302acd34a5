import { env } from "cloudflare:workers";
import { describe, it, vi } from "vitest";
import { localPlatform } from "../platform/local/local-runtime.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { deployAndWait, postDeploy, projectId, tenant, tenantJson } from "./deploy-helpers.ts";

/**
 * Durable Object usage on the local platform is measured by the host object, outside the tenant's
 * reach (platform/local/host-meter.ts): each trick that silenced the old in-tenant meter is deployed
 * as real tenant code, and usage still equals what was spent. The tenant's env holds only what it
 * declared, a binding named like Shipyard's is refused, and the gateway (which a tenant can find
 * through `import { env } from "cloudflare:workers"`) writes no usage and reaches only bound classes.
 */

/** Each Durable Object fetch waits this long: wall time the meter must see. */
const WORK_MS = 30;
const CALLS = 3;

interface Trick {
  name: string;
  /** Top-level code of the tenant's main module. */
  top?: string;
  /** Code in the class's constructor, after super(). */
  ctor?: string;
  /** The class body: a `fetch` unless the trick defines its own. */
  body?: string;
}

const SLEEP = `const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));`;
const PLAIN_FETCH = `async fetch() { await sleep(${WORK_MS}); return Response.json({ ok: true }); }`;

const TRICKS: Trick[] = [
  {
    name: "own-fetch",
    ctor: `this.fetch = async () => { await sleep(${WORK_MS}); return Response.json({ ok: true }); };`,
    body: "",
  },
  {
    name: "getter-fetch",
    body: `get fetch() { return async () => { await sleep(${WORK_MS}); return Response.json({ ok: true }); }; }`,
  },
  {
    name: "replaced-usage",
    ctor: `const silent = { writeDataPoint() {} };
    try { env.USAGE = silent; } catch {}
    try { Object.defineProperty(env, "USAGE", { value: silent, configurable: true }); } catch {}`,
  },
  { name: "replaced-proxy", top: `globalThis.Proxy = class { constructor(target) { return target; } };` },
  { name: "replaced-date-now", top: `Date.now = () => 0;` },
];

function trickManifest(project: string, trick: Trick): DeployManifest {
  const main = `import { DurableObject, env as moduleEnv } from "cloudflare:workers";
${SLEEP}
${trick.top ?? ""}
export class C extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ${trick.ctor ?? ""}
  }
  ${trick.body ?? PLAIN_FETCH}
}
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/env") return Response.json({ env: Object.keys(env).sort(), module_env_usage: "USAGE" in moduleEnv });
    if (path === "/forge") {
      // The gateway is reachable through the module env: its usage operation is gone.
      const gateway = moduleEnv.__SHIPYARD_GATEWAY;
      const response = await gateway.fetch("http://gateway.shipyard.internal/usage", {
        method: "POST",
        headers: { "x-shipyard-gateway-op": "usage", "content-type": "application/json" },
        body: JSON.stringify({ blobs: ["someone-else", "C", "fetch", "ok"], doubles: [1e9] }),
      });
      return Response.json({ status: response.status });
    }
    if (path === "/bypass") {
      // An object call straight through the gateway, naming any storage namespace and class.
      const url = new URL(request.url);
      const target = { namespace: url.searchParams.get("ns"), className: "C", objectKey: "${"0".repeat(64)}", name: null };
      const response = await moduleEnv.__SHIPYARD_GATEWAY.fetch("http://tenant/", {
        headers: { "x-shipyard-gateway-op": "object", "x-shipyard-object": JSON.stringify(target) },
      });
      return Response.json({ status: response.status });
    }
    return env.C.getByName("x").fetch(request);
  },
};
`;
  return {
    project_id: project,
    compatibility_date: "2026-11-01",
    main_module: "index.js",
    modules: [{ name: "index.js", type: "esm", content: main }],
    config: {
      durable_objects: { bindings: [{ name: "C", class_name: "C" }] },
      migrations: [{ tag: "v1", new_sqlite_classes: ["C"] }],
      vars: { GREETING: "hi" },
    },
  };
}

type Usage = { invocations: number; wall_ms: number; min_ms: number; handlers: string };

async function storedUsage(project: string): Promise<Usage> {
  const row = await env.DB.prepare(
    `SELECT COUNT(*) AS invocations, COALESCE(SUM(json_extract(data, '$.wall_ms')), 0) AS wall_ms,
            COALESCE(MIN(json_extract(data, '$.wall_ms')), 0) AS min_ms,
            COALESCE(GROUP_CONCAT(DISTINCT json_extract(data, '$.handler')), '') AS handlers
     FROM runtime_events WHERE project_id = ? AND type = 'do_usage'`,
  )
    .bind(project)
    .first<Usage>();
  return row ?? { invocations: 0, wall_ms: 0, min_ms: 0, handlers: "" };
}

describe("metering nobody in the tenant can suppress", () => {
  it.for(TRICKS.map((trick) => [trick.name, trick] as const))(
    "T2.3 %s: every Durable Object invocation is counted once, with its wall time",
    async ([name, trick], { expect }) => {
      const project = projectId(`meter-${name}`);
      await deployAndWait(trickManifest(project, trick));
      for (let i = 0; i < CALLS; i++) expect(await tenantJson(project, "/")).toEqual({ ok: true });

      let usage = await storedUsage(project);
      await vi.waitUntil(async () => (usage = await storedUsage(project)).invocations >= CALLS, {
        timeout: 15_000,
        interval: 200,
      });
      // Let any late (double) record land before the exact count.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      usage = await storedUsage(project);
      expect(usage.invocations).toBe(CALLS);
      expect(usage.handlers).toBe("fetch");
      // Each call slept WORK_MS; timers may fire a little early, the host's clock adds the hop.
      expect(usage.min_ms).toBeGreaterThanOrEqual(WORK_MS - 5);
      expect(usage.wall_ms).toBeLessThan(CALLS * WORK_MS + 3_000);
    },
  );

  it("T3.1 the tenant's env holds only its declared bindings, and the gateway writes no usage", async ({ expect }) => {
    const project = projectId("meter-env");
    const victim = projectId("meter-victim");
    await deployAndWait(trickManifest(project, { name: "plain" }));
    expect(await tenantJson(project, "/env")).toEqual({ env: ["C", "GREETING"], module_env_usage: false });
    expect(await tenantJson(project, "/forge")).toEqual({ status: 400 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await storedUsage(victim)).invocations).toBe(0);
    expect((await storedUsage(project)).invocations).toBe(0);
  });

  it("T3.2 the gateway reaches only declared, bound classes: no storage outside a migration, none after enforcement removed the binding", async ({
    expect,
  }) => {
    const project = projectId("meter-bypass");
    await deployAndWait(trickManifest(project, { name: "plain" }));
    const platform = localPlatform(env, project);
    const namespace = (await platform.current())?.classes.C ?? "";
    expect(await tenantJson(project, `/bypass?ns=${namespace}`)).toEqual({ status: 200 });
    expect(await tenantJson(project, "/bypass?ns=made-up")).toEqual({ status: 403 });
    const script = await platform.getScript();
    const kept = (script?.bindings ?? []).filter((binding) => binding.type !== "durable_object_namespace");
    expect((await platform.setBindings(kept)).ok).toBe(true);
    expect(await tenantJson(project, `/bypass?ns=${namespace}`)).toEqual({ status: 403 });
  });

  it.for(["USAGE", "__SHIPYARD_GATEWAY", "__shipyard_x"])(
    "T3.3 a binding named %s is refused with a 400 naming it",
    async (binding, { expect }) => {
      const project = projectId("meter-reserved");
      const manifest = trickManifest(project, { name: "plain" });
      const response = await postDeploy({ ...manifest, config: { ...manifest.config, vars: { [binding]: "x" } } });
      expect(response.status).toBe(400);
      const text = await response.text();
      expect(text).toContain(binding);
      expect(text).toContain("reserved");
      expect((await tenant(project, "/")).status).toBe(404);
    },
  );
});
