/**
 * The real CloudflareResources (over CloudflareScriptHost's transport) against the fake D1 API over HTTP
 * (test/fake-cloudflare-api/d1.ts, started by test/global-setup.ts).
 */
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import { type ControlCommand, FAKE_CF_API_TOKEN } from "../test/fake-cloudflare-api/protocol.ts";
import { CloudflareResources } from "./cloudflare-resources.ts";
import { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import type { ScriptBinding } from "./script-host.ts";

const RETRIES = { attempts: 3, baseDelayMs: 20, maxDelayMs: 5_000 };

/** Each test its own account, so the fake's databases, faults and request log stay the test's. */
function d1(account: string): CloudflareResources {
  return new CloudflareResources(
    new CloudflareScriptHost({
      accountId: account,
      namespace: "unused",
      apiToken: FAKE_CF_API_TOKEN,
      baseUrl: env.CF_API_BASE_URL,
      retries: RETRIES,
    }),
  );
}

function account(label: string): string {
  return `acct-${label}-${crypto.randomUUID().slice(0, 8)}`;
}

async function control(command: ControlCommand): Promise<void> {
  const response = await fetch(new URL("/__control", env.CF_API_BASE_URL), {
    method: "POST",
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`fake control refused: ${await response.text()}`);
}

async function requests(acct: string) {
  const response = await fetch(
    new URL(`/__control/requests?script=${encodeURIComponent(`d1:${acct}`)}`, env.CF_API_BASE_URL),
  );
  return z.array(z.object({ method: z.string(), path: z.string(), status: z.number() })).parse(await response.json());
}

async function api(acct: string, path: string, init: RequestInit = {}) {
  const response = await fetch(new URL(`/client/v4/accounts/${acct}/d1/database${path}`, env.CF_API_BASE_URL), {
    ...init,
    headers: { authorization: `Bearer ${FAKE_CF_API_TOKEN}`, "content-type": "application/json" },
  });
  return {
    status: response.status,
    body: await response.json<{ success: boolean; errors: { code: number }[]; result: unknown }>(),
  };
}

/** Uploads a one-module script with `binding` to the test's account. */
function uploader(acct: string) {
  const scripts = new CloudflareScriptHost({
    accountId: acct,
    namespace: "ns",
    apiToken: FAKE_CF_API_TOKEN,
    baseUrl: env.CF_API_BASE_URL,
    retries: RETRIES,
  });
  const upload = (scriptName: string, binding: ScriptBinding) =>
    scripts.upload({
      scriptName,
      mainModule: "index.js",
      modules: [
        { name: "index.js", type: "esm", content: "export default { fetch() { return new Response('ok'); } };" },
      ],
      bindings: [binding],
      compatibilityDate: "2026-11-01",
    });
  return { scripts, upload };
}

describe("CloudflareResources against the fake D1 API", () => {
  it("looks up by name before creating: a second ensure (a retried step) returns the same database", async ({
    expect,
  }) => {
    const acct = account("ensure");
    const first = await d1(acct).ensureD1("shipyard-p-db");
    const again = await d1(acct).ensureD1("shipyard-p-db");
    expect(again).toEqual(first);
    const other = await d1(acct).ensureD1("shipyard-p-other");
    expect(other.id).not.toBe(first.id);
    expect((await requests(acct)).filter((r) => r.method === "POST").map((r) => r.status)).toEqual([200, 200]);
    // The fake enforces the real rule the lookup avoids: a taken name is code 7502.
    const duplicate = await api(acct, "", { method: "POST", body: JSON.stringify({ name: "shipyard-p-db" }) });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body.errors[0]?.code).toBe(7502);
  });

  it("retries a 503 with backoff and still creates exactly one database", async ({ expect }) => {
    const acct = account("retry");
    await control({ action: "fail", status: 503, count: 1, script: `d1:${acct}` });
    const { id } = await d1(acct).ensureD1("shipyard-r-db");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await requests(acct)).map((r) => [r.method, r.status])).toEqual([
      ["GET", 503],
      ["GET", 200],
      ["POST", 200],
    ]);
    const list = await api(acct, "?name=shipyard-r-db");
    expect(list.body.result).toHaveLength(1);
  });

  it("applies migrations forward-only into d1_migrations, stops at a failing one with SQLite's message, reports the size", async ({
    expect,
  }) => {
    const acct = account("migrate");
    const host = d1(acct);
    const { id } = await host.ensureD1("shipyard-m-db");
    const init = { name: "0001_init.sql", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" };
    expect(await host.applyD1Migrations(id, [init])).toEqual({ ok: true, value: { applied: ["0001_init.sql"] } });
    const bad = {
      name: "0002_bad.sql",
      sql: "ALTER TABLE notes ADD COLUMN x TEXT;\nALTER TABLE missing ADD COLUMN y TEXT;",
    };
    const failed = await host.applyD1Migrations(id, [init, bad]);
    expect(failed.ok).toBe(false);
    if (!failed.ok) {
      expect(failed.error.name).toBe("0002_bad.sql");
      expect(failed.error.message).toMatch(/no such table: missing/);
    }
    const fixed = { name: "0002_bad.sql", sql: "ALTER TABLE notes ADD COLUMN x TEXT" };
    expect(await host.applyD1Migrations(id, [init, fixed])).toEqual({ ok: true, value: { applied: ["0002_bad.sql"] } });
    const rows = await api(acct, `/${id}/query`, {
      method: "POST",
      body: JSON.stringify({ sql: "SELECT name FROM d1_migrations ORDER BY id" }),
    });
    expect(rows.body.result).toEqual([
      { results: [{ name: "0001_init.sql" }, { name: "0002_bad.sql" }], success: true, meta: { changed_db: true } },
    ]);
    expect(await host.d1Size(id)).toBeGreaterThan(0);
  });
});

describe("a D1 binding in the upload metadata", () => {
  it("binds by id a database the account has, and the fake refuses an id it does not have", async ({ expect }) => {
    const acct = account("bind");
    const { id } = await d1(acct).ensureD1("shipyard-b-db");
    const { scripts, upload } = uploader(acct);
    await upload("bound", { type: "d1", name: "DB", id });
    expect((await scripts.getScript("bound"))?.bindings).toEqual([{ type: "d1", name: "DB", id }]);
    await expect(
      upload("bound", { type: "d1", name: "DB", id: "00000000-0000-4000-8000-000000000000" }),
    ).rejects.toMatchObject({ code: "invalid_script" });
  });
});

describe("CloudflareResources KV namespaces against the fake KV API", () => {
  it("looks the title up on every page before creating; a retry returns the same namespace; the upload binds it by id", async ({
    expect,
  }) => {
    const acct = account("kv");
    const kvApi = (init: RequestInit) =>
      fetch(new URL(`/client/v4/accounts/${acct}/storage/kv/namespaces`, env.CF_API_BASE_URL), {
        ...init,
        headers: { authorization: `Bearer ${FAKE_CF_API_TOKEN}`, "content-type": "application/json" },
      });
    // 100 other namespaces first, so the one we look for is on page 2.
    for (let i = 0; i < 100; i++) await kvApi({ method: "POST", body: JSON.stringify({ title: `other-${i}` }) });
    const host = d1(acct);
    const first = await host.ensureKV("shipyard-p-cache");
    expect(await host.ensureKV("shipyard-p-cache")).toEqual(first);
    const duplicate = await kvApi({ method: "POST", body: JSON.stringify({ title: "shipyard-p-cache" }) });
    expect(duplicate.status).toBe(400);
    expect((await duplicate.json<{ errors: { code: number }[] }>()).errors[0]?.code).toBe(10014);
    const { scripts, upload } = uploader(acct);
    await upload("kv-bound", { type: "kv_namespace", name: "CACHE", namespace_id: first.id });
    expect((await scripts.getScript("kv-bound"))?.bindings).toEqual([
      { type: "kv_namespace", name: "CACHE", namespace_id: first.id },
    ]);
    await expect(
      upload("kv-bound", { type: "kv_namespace", name: "CACHE", namespace_id: "0".repeat(32) }),
    ).rejects.toMatchObject({ code: "invalid_script" });
  });
});

/** The fake's account API at `path` (under /accounts/<acct>), with the token. */
function accountApi(acct: string) {
  return async (path: string, init: RequestInit = {}) => {
    const response = await fetch(new URL(`/client/v4/accounts/${acct}${path}`, env.CF_API_BASE_URL), {
      ...init,
      headers: { authorization: `Bearer ${FAKE_CF_API_TOKEN}`, "content-type": "application/json" },
    });
    return {
      status: response.status,
      body: await response.json<{ success: boolean; errors: { code: number }[]; result: unknown }>(),
    };
  };
}

describe("CloudflareResources R2 buckets against the fake R2 API", () => {
  it("T7.3 looks the bucket up before creating (404 10006 when absent); a retry finds it; the fake has the real rules; the upload binds it by name", async ({
    expect,
  }) => {
    const acct = account("r2");
    const call = accountApi(acct);
    const host = d1(acct);
    await control({ action: "fail", status: 503, count: 1, script: `d1:${acct}` });
    const first = await host.ensureR2("shipyard-p-files");
    expect(first).toEqual({ id: "shipyard-p-files" });
    expect(await host.ensureR2("shipyard-p-files")).toEqual(first);
    expect((await requests(acct)).map((r) => [r.method, r.status])).toEqual([
      ["GET", 503],
      ["GET", 404],
      ["POST", 200],
      ["GET", 200],
    ]);
    const missing = await call("/r2/buckets/shipyard-none");
    expect([missing.status, missing.body.errors[0]?.code]).toEqual([404, 10006]);
    const taken = await call("/r2/buckets", { method: "POST", body: JSON.stringify({ name: "shipyard-p-files" }) });
    expect([taken.status, taken.body.errors[0]?.code]).toEqual([409, 10073]);
    for (const name of ["ab", "Upper-case", "ends-with-", "under_score", "x".repeat(64)]) {
      const invalid = await call("/r2/buckets", { method: "POST", body: JSON.stringify({ name }) });
      expect([name, invalid.status, invalid.body.errors[0]?.code]).toEqual([name, 400, 10005]);
    }
    const { scripts, upload } = uploader(acct);
    await upload("r2-bound", { type: "r2_bucket", name: "FILES", bucket_name: first.id });
    expect((await scripts.getScript("r2-bound"))?.bindings).toEqual([
      { type: "r2_bucket", name: "FILES", bucket_name: first.id },
    ]);
    await expect(
      upload("r2-bound", { type: "r2_bucket", name: "FILES", bucket_name: "shipyard-never-made" }),
    ).rejects.toMatchObject({ code: "invalid_script" });
  });

  it("T7.5 sizes a bucket from its objects, empties it before deleting it (10008 otherwise), and a second delete is no error", async ({
    expect,
  }) => {
    const acct = account("r2-delete");
    const call = accountApi(acct);
    const host = d1(acct);
    const { id } = await host.ensureR2("shipyard-d-files");
    for (const [key, body] of [
      ["a.txt", "hello"],
      ["dir/b.bin", "0123456789"],
    ] as const) {
      const put = await call(`/r2/buckets/${id}/objects/${key}`, { method: "PUT", body });
      expect(put.status).toBe(200);
    }
    expect(await host.r2Size(id)).toBe(15);
    const refused = await call(`/r2/buckets/${id}`, { method: "DELETE" });
    expect([refused.status, refused.body.errors[0]?.code]).toEqual([409, 10008]);
    await host.deleteResource("r2", id);
    expect((await call(`/r2/buckets/${id}`)).status).toBe(404);
    await host.deleteResource("r2", id);
  });
});

describe("CloudflareResources export and delete of D1 and KV", () => {
  it("T7.6 exports a database through the export API (polled with its bookmark, read from the signed URL) and deletes it twice without error", async ({
    expect,
  }) => {
    const acct = account("export");
    const call = accountApi(acct);
    const host = d1(acct);
    const { id } = await host.ensureD1("shipyard-e-db");
    await host.applyD1Migrations(id, [
      {
        name: "0001_init.sql",
        sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes (body) VALUES ('it''s here');",
      },
    ]);
    const sql = await host.exportD1(id);
    expect(sql).toContain("CREATE TABLE notes");
    expect(sql).toContain("INSERT INTO \"notes\" VALUES(1,'it''s here');");
    expect(sql).toContain("0001_init.sql");
    const exports = (await requests(acct)).filter((r) => r.path.endsWith("/export")).map((r) => r.status);
    expect(exports).toEqual([200, 200]);
    await host.deleteResource("d1", id);
    expect((await call(`/d1/database/${id}`)).status).toBe(404);
    await host.deleteResource("d1", id);

    const { id: namespace } = await host.ensureKV("shipyard-e-cache");
    await host.deleteResource("kv", namespace);
    const list = await call("/storage/kv/namespaces?per_page=100");
    expect(list.body.result).toEqual([]);
    await host.deleteResource("kv", namespace);
  });
});
