import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { kvCases } from "./kv-cases.ts";
import { ADMIN, BASE_URL, deployAndWait, singleModuleManifest, projectId, tenantJson } from "./deploy-helpers.ts";

/** A tenant with a KV binding `CACHE`: `/put?k=&v=`, `/get?k=`, and the shared cases on `/cases`. */
function kvManifest(project: string, version: string): DeployManifest {
  const source = `
const kvCases = ${kvCases.toString()};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const k = url.searchParams.get("k") ?? "";
    if (url.pathname === "/put") {
      await env.CACHE.put(k, url.searchParams.get("v") ?? "");
      return Response.json({ ok: true });
    }
    if (url.pathname === "/get") return Response.json({ value: await env.CACHE.get(k), version: ${JSON.stringify(version)} });
    if (url.pathname === "/cases") return Response.json(await kvCases(env.CACHE, "cases-" + crypto.randomUUID() + "/"));
    return new Response("not found", { status: 404 });
  },
};
`;
  return singleModuleManifest(project, source, { kv_namespaces: [{ binding: "CACHE" }] });
}

describe("tenant KV (local platform)", () => {
  it("the namespace is provisioned once, kept across deploys, isolated per project, and listed", async ({ expect }) => {
    const a = projectId("kv-a");
    const b = projectId("kv-b");
    await deployAndWait(kvManifest(a, "v1"));
    await deployAndWait(kvManifest(b, "v1"));
    expect(await tenantJson(a, "/put?k=greeting&v=hi")).toEqual({ ok: true });
    expect(await tenantJson(a, "/get?k=greeting")).toEqual({ value: "hi", version: "v1" });
    expect(await tenantJson(b, "/get?k=greeting")).toEqual({ value: null, version: "v1" });
    await deployAndWait(kvManifest(a, "v2"));
    expect(await tenantJson(a, "/get?k=greeting")).toEqual({ value: "hi", version: "v2" });
    const info = await exports.default.fetch(`${BASE_URL}/v1/projects/${a}`, { headers: ADMIN });
    const { resources } = await info.json<{ resources: unknown[] }>();
    expect(resources).toEqual([
      expect.objectContaining({ kind: "kv", binding: "CACHE", name: `shipyard-${a}-cache`, size_bytes: null }),
    ]);
  });

  it("the shim answers the KV API cases exactly as a real KV binding does", async ({ expect }) => {
    const project = projectId("kv-cases");
    await deployAndWait(kvManifest(project, "v1"));
    const real = await kvCases(env.TEST_KV, `cases-${crypto.randomUUID()}/`);
    const shim = await tenantJson(project, "/cases");
    expect(shim).toEqual(real);
    expect(real).toMatchObject({
      text: "hello",
      bytes: [0, 1, 255],
      deleted: null,
      pages: { first: ["a", "b", "c"], has_cursor: true, rest: ["d"] },
      short_ttl: expect.stringMatching(/expiration_ttl/i),
    });
  });
});
