/**
 * What local workerd does with Worker Loader `limits` (measured, docs/tenant-isolation.md). On
 * Cloudflare an invocation past `cpuMs` or `subRequests` throws; workerd (1.20261102) accepts the
 * field and enforces neither, so a tenant's CPU loop holds the whole process. This file is a canary:
 * when a workerd upgrade starts enforcing them it fails, and the platform can turn the limit's
 * exception into a 503 for that tenant (and drop the separate-process plan).
 */
import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { TENANT_LIMITS } from "../script-host.ts";
import { workerCode } from "./local-runtime.ts";

const SPIN = `export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/calls") {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await env.G.fetch("http://gateway/")).status);
      return Response.json(statuses);
    }
    let k = 0;
    for (let i = 0; i < 3e8; i++) k += i % 7;
    return Response.json({ k });
  },
};
`;

describe("Worker Loader limits on local workerd", () => {
  it("T1.1 every version is loaded with the tenant limits", ({ expect }) => {
    const code = workerCode(
      {
        mainModule: "index.js",
        modules: [{ name: "index.js", type: "esm", content: SPIN }],
        compatibilityDate: "2026-11-01",
        compatibilityFlags: [],
        bindings: [],
        removed: [],
        classes: {},
      },
      exports.TenantGateway({ props: { script: "s", versionId: "v", versionKey: "k", generation: 0 } }),
    );
    expect(code.limits).toEqual({ cpuMs: TENANT_LIMITS.cpuMs, subRequests: TENANT_LIMITS.subRequests });
  });

  it("T1.2 are not enforced yet: 5 ms of CPU and 2 subrequests allowed, a 3e8-step loop and 5 calls still answer", async ({
    expect,
  }) => {
    const worker = env.LOADER.load({
      compatibilityDate: "2026-11-01",
      mainModule: "index.js",
      modules: { "index.js": SPIN },
      env: { G: exports.TenantGateway({ props: { script: "s", versionId: "v", versionKey: "k", generation: 0 } }) },
      limits: { cpuMs: 5, subRequests: 2 },
      globalOutbound: null,
    });
    const spin = await worker.getEntrypoint().fetch("http://tenant/spin");
    expect(spin.status).toBe(200);
    // The gateway refuses a request without an operation: 400 each time, but each one got through.
    expect(await (await worker.getEntrypoint().fetch("http://tenant/calls")).json()).toEqual([400, 400, 400, 400, 400]);
  });
});
