import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { tenantDatabase } from "../platform/d1-binding.ts";
import { LocalResources } from "../platform/local/local-resources.ts";
import { bucketPrefix } from "../platform/r2-binding.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import {
  ADMIN,
  BASE_URL,
  deployAndWait,
  singleModuleManifest,
  projectId,
  tenantJson,
  waitForDeploy,
} from "./deploy-helpers.ts";

/** A tenant with all three resources: `/write` puts a row, a KV pair and an R2 object, `/read` reads them back. */
function storageManifest(project: string): DeployManifest {
  const source = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/write") {
      await env.DB.prepare("INSERT INTO notes (body) VALUES (?)").bind("it's kept").run();
      await env.CACHE.put("greeting", "hi");
      await env.FILES.put("a/b.txt", "file body");
      return Response.json({ ok: true });
    }
    if (url.pathname === "/read") {
      const { results } = await env.DB.prepare("SELECT body FROM notes ORDER BY id").all();
      const file = await env.FILES.get("a/b.txt");
      return Response.json({ notes: results.map((r) => r.body), kv: await env.CACHE.get("greeting"), file: file === null ? null : await file.text() });
    }
    return new Response("not found", { status: 404 });
  },
};
`;
  return singleModuleManifest(project, source, {
    d1_databases: [
      {
        binding: "DB",
        migrations: [
          {
            name: "0001_init.sql",
            // `acf_log` matches the pattern `_cf_%` when `_` is LIKE's wildcard: it is the tenant's, and exported.
            sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT); CREATE TABLE acf_log (n INTEGER); INSERT INTO acf_log VALUES (7);",
          },
        ],
      },
    ],
    kv_namespaces: [{ binding: "CACHE" }],
    r2_buckets: [{ binding: "FILES" }],
  });
}

async function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`${BASE_URL}${path}`, { ...init, headers: ADMIN });
}

interface Resource {
  kind: "d1" | "kv" | "r2";
  binding: string;
  name: string;
  id: string;
}

describe("down with tenant resources (local platform)", () => {
  it("T7.4 warns about each resource, exports D1 to SQL, deletes every resource's data, and a project deployed again starts empty", async ({
    expect,
  }) => {
    const project = projectId("down-res");
    await deployAndWait(storageManifest(project));
    expect(await tenantJson(project, "/write")).toEqual({ ok: true });
    expect(await tenantJson(project, "/read")).toEqual({ notes: ["it's kept"], kv: "hi", file: "file body" });
    const { resources } = await (await admin(`/v1/projects/${project}`)).json<{ resources: Resource[] }>();
    const d1 = resources.find((r) => r.kind === "d1");
    const r2 = resources.find((r) => r.kind === "r2");
    expect(resources.map((r) => [r.kind, r.binding])).toEqual([
      ["kv", "CACHE"],
      ["d1", "DB"],
      ["r2", "FILES"],
    ]);

    // The 409 names every resource, as it names Durable Object storage.
    const refused = await admin(`/v1/projects/${project}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    const { error } = await refused.json<{ error: { message: string; details: { resources: unknown[] } } }>();
    expect(error.message).toContain(`its D1 database DB (shipyard-${project}-db)`);
    expect(error.message).toContain(`its KV namespace CACHE (shipyard-${project}-cache)`);
    expect(error.message).toContain(`its R2 bucket FILES (shipyard-${project}-files)`);
    expect(error.details.resources).toEqual([
      { kind: "kv", binding: "CACHE", name: `shipyard-${project}-cache` },
      { kind: "d1", binding: "DB", name: `shipyard-${project}-db` },
      { kind: "r2", binding: "FILES", name: `shipyard-${project}-files` },
    ]);

    // Export: a SQL dump that rebuilds the database elsewhere.
    const exported = await admin(`/v1/projects/${project}/resources/DB/export`, { method: "POST" });
    expect(exported.status).toBe(200);
    const { sql } = await exported.json<{ sql: string }>();
    expect(sql).toContain("CREATE TABLE notes");
    expect(sql).toContain(`INSERT INTO "notes" VALUES(1,'it''s kept');`);
    expect(sql).toContain(`INSERT INTO "d1_migrations"`);
    expect(sql).toContain(`INSERT INTO "acf_log" VALUES(7);`);
    expect(sql).not.toContain("_cf_");
    const copy = tenantDatabase(env, env.TENANT_DATABASE.newUniqueId().toString());
    expect(await copy.query({ op: "exec", sql })).toMatchObject({ ok: true });
    expect(
      await copy.query({ op: "query", statements: [{ sql: "SELECT body FROM notes", params: [] }] }),
    ).toMatchObject({
      ok: true,
      results: [{ rows: [["it's kept"]] }],
    });
    expect((await admin(`/v1/projects/${project}/resources/CACHE/export`, { method: "POST" })).status).toBe(409);
    expect((await admin(`/v1/projects/${project}/resources/NOPE/export`, { method: "POST" })).status).toBe(404);

    const accepted = await admin(`/v1/projects/${project}?confirm=${project}`, { method: "DELETE" });
    expect(accepted.status).toBe(202);
    const { deploy_id } = await accepted.json<{ deploy_id: string }>();
    const done = await waitForDeploy(deploy_id);
    expect(done.status).toBe("complete");
    expect(done.steps.find((s) => s.name === "delete resources")?.output).toEqual({
      deleted: ["kv:CACHE", "d1:DB", "r2:FILES"],
    });
    expect(await tenantDatabase(env, d1?.id ?? "").size()).toBeLessThan(8192);
    expect((await env.TENANT_R2.list({ prefix: bucketPrefix(r2?.id ?? "") })).objects).toEqual([]);
    // Deleting again (a retried step) finds nothing and is no error.
    const host = new LocalResources(env);
    for (const resource of resources) await host.deleteResource(resource.kind, resource.id);

    // Deployed again under the same id: the same names, and nothing of the old data.
    await deployAndWait(storageManifest(project));
    expect(await tenantJson(project, "/read")).toEqual({ notes: [], kv: null, file: null });
  });
});
