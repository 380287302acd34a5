import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { d1Cases } from "./d1-cases.ts";
import {
  ADMIN,
  BASE_URL,
  deployAndWait,
  singleModuleManifest,
  postDeploy,
  projectId,
  tenantJson,
  waitForDeploy,
} from "./deploy-helpers.ts";

const INIT = { name: "0001_init.sql", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);" };
const TAGS = {
  name: "0002_tags.sql",
  sql: "ALTER TABLE notes ADD COLUMN tag TEXT;\nCREATE INDEX notes_tag ON notes (tag);",
};

/** A tenant that keeps notes in its D1 binding `DB` and runs the shared D1 cases on `/cases`. */
function notesManifest(project: string, version: string, migrations: { name: string; sql: string }[]): DeployManifest {
  const source = `
const d1Cases = ${d1Cases.toString()};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/notes" && request.method === "POST") {
      const body = url.searchParams.get("body");
      const result = await env.DB.prepare("INSERT INTO notes (body) VALUES (?)").bind(body).run();
      return Response.json({ id: result.meta.last_row_id, version: ${JSON.stringify(version)} });
    }
    if (url.pathname === "/notes") {
      const { results } = await env.DB.prepare("SELECT id, body FROM notes ORDER BY id").all();
      return Response.json({ notes: results, version: ${JSON.stringify(version)} });
    }
    if (url.pathname === "/tables") {
      const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
      const runtime = await env.DB.prepare("SELECT * FROM _cf_METADATA").all().then(() => "readable", (error) => String(error.message).split(":")[0]);
      return Response.json({ tables: results.map((row) => row.name), runtime });
    }
    if (url.pathname === "/cases") return Response.json(await d1Cases(env.DB, "cases_" + crypto.randomUUID().replaceAll("-", "")));
    return new Response("not found", { status: 404 });
  },
};
`;
  return singleModuleManifest(project, source, { d1_databases: [{ binding: "DB", migrations }] });
}

async function addNote(project: string, body: string): Promise<{ id: number; version: string }> {
  const posted = await exports.default.fetch(`${BASE_URL}/t/${project}/notes?body=${encodeURIComponent(body)}`, {
    method: "POST",
  });
  if (posted.status !== 200) throw new Error(`POST /notes → ${posted.status}: ${await posted.text()}`);
  return posted.json();
}

describe("tenant D1 (local platform)", () => {
  it("a migration creates the table, the tenant inserts and selects; the database is kept across deploys and rollbacks and listed", async ({
    expect,
  }) => {
    const project = projectId("d1");
    const first = await deployAndWait(notesManifest(project, "v1", [INIT]));
    expect(first.steps.find((step) => step.name === "apply D1 migrations")?.output).toEqual({
      applied: { DB: ["0001_init.sql"] },
    });
    expect(await addNote(project, "first")).toEqual({ id: 1, version: "v1" });
    expect(await tenantJson(project, "/notes")).toEqual({ notes: [{ id: 1, body: "first" }], version: "v1" });

    const second = await deployAndWait(notesManifest(project, "v2", [INIT, TAGS]));
    expect(second.steps.find((step) => step.name === "apply D1 migrations")?.output).toEqual({
      applied: { DB: ["0002_tags.sql"] },
    });
    expect(await addNote(project, "second")).toEqual({ id: 2, version: "v2" });

    const rollback = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}/rollback`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(rollback.status).toBe(202);
    const rolledBack = await waitForDeploy((await rollback.json<{ deploy_id: string }>()).deploy_id);
    expect(rolledBack.status).toBe("complete");
    expect(await tenantJson(project, "/notes")).toEqual({
      notes: [
        { id: 1, body: "first" },
        { id: 2, body: "second" },
      ],
      version: "v1",
    });

    const info = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, { headers: ADMIN });
    expect(info.status).toBe(200);
    const { resources } = await info.json<{
      resources: { kind: string; binding: string; id: string; size_bytes: number }[];
    }>();
    expect(resources).toHaveLength(1);
    expect(resources[0]).toMatchObject({ kind: "d1", binding: "DB", name: `shipyard-${project}-db` });
    expect(resources[0]?.id).toMatch(/^[0-9a-f]{64}$/);
    expect(resources[0]?.size_bytes).toBeGreaterThan(0);
    const rows = await env.DB.prepare("SELECT count(*) AS c FROM tenant_resources WHERE project_id = ?")
      .bind(project)
      .first("c");
    expect(rows).toBe(1);
  });

  it("two projects with the same binding name have separate databases, and neither sees Shipyard's own D1", async ({
    expect,
  }) => {
    const a = projectId("d1-a");
    const b = projectId("d1-b");
    await deployAndWait(notesManifest(a, "v1", [INIT]));
    await deployAndWait(notesManifest(b, "v1", [INIT]));
    await addNote(a, "only in a");
    expect(await tenantJson(a, "/notes")).toMatchObject({ notes: [{ id: 1, body: "only in a" }] });
    expect(await tenantJson(b, "/notes")).toMatchObject({ notes: [] });
    // A tenant database holds the tenant's tables and wrangler's d1_migrations, none of Shipyard's;
    // the runtime's own `_cf_` table (session bookmarks) is listed, as D1 lists `_cf_KV`, and
    // closed to the tenant.
    expect(await tenantJson(a, "/tables")).toEqual({
      tables: ["_cf_METADATA", "d1_migrations", "notes", "sqlite_sequence"],
      runtime: "D1_ERROR",
    });
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE name = 'notes'").all();
    expect(results).toEqual([]);
  });

  it("a failing migration fails the deploy with SQLite's error and the old version keeps serving", async ({
    expect,
  }) => {
    const project = projectId("d1-fail");
    await deployAndWait(notesManifest(project, "v1", [INIT]));
    await addNote(project, "kept");
    const bad = {
      name: "0002_bad.sql",
      sql: "ALTER TABLE notes ADD COLUMN x TEXT;\nALTER TABLE no_such_table ADD COLUMN y TEXT;",
    };
    const response = await postDeploy(notesManifest(project, "v2", [INIT, bad]));
    expect(response.status).toBe(202);
    const status = await waitForDeploy((await response.json<{ deploy_id: string }>()).deploy_id);
    expect(status.status).toBe("errored");
    expect(status.error).toMatch(/D1 migration 0002_bad\.sql of binding DB failed: .*no such table: no_such_table/);
    expect(status.steps.find((step) => step.name === "upload")).toBeUndefined();
    expect(await tenantJson(project, "/notes")).toEqual({ notes: [{ id: 1, body: "kept" }], version: "v1" });
    // The failed migration was rolled back as a whole (its first statement too), and not recorded.
    const fixed = { name: "0002_bad.sql", sql: "ALTER TABLE notes ADD COLUMN x TEXT;" };
    const retried = await deployAndWait(notesManifest(project, "v3", [INIT, fixed]));
    expect(retried.steps.find((step) => step.name === "apply D1 migrations")?.output).toEqual({
      applied: { DB: ["0002_bad.sql"] },
    });
  });

  it("the shim answers the D1 API cases exactly as a real D1 binding does", async ({ expect }) => {
    const project = projectId("d1-cases");
    await deployAndWait(notesManifest(project, "v1", []));
    const real = await d1Cases(env.DB, `cases_${crypto.randomUUID().replaceAll("-", "")}`);
    const shim = await tenantJson(project, "/cases");
    expect(shim).toEqual(real);
    // And the cases do say something (not two empty answers).
    expect(real).toMatchObject({ exec: 1, first_column: "a", syntax_error: "D1_ERROR", after_rollback: 0 });
    expect(real).toMatchObject({
      session_before_query: null,
      session_bookmark: "string",
      session_reads_its_write: 1,
      resumed_starts_at_bookmark: true,
      resumed_batch: [{ c: 2 }],
      bookmark_moves_forward: true,
      first_primary_before_query: null,
      blank_is_unconstrained: null,
      database_has_bookmark: false,
    });
    expect(real).toMatchObject({
      blobs: [
        { data: [0, 1, 254, 255], n: 4 },
        { data: [7, 8], n: 2 },
      ],
    });
  });
});
