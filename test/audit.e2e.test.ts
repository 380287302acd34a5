/**
 * The audit trail end to end: writers fill the D1 outbox (`audit_log`), `GET /v1/admin/audit`
 * relays it into the AuditLog day objects and reads them; filters, CSV, idempotency by id, and
 * nothing lost while an AuditLog object fails.
 */
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { AuditLog, auditDay, auditLog } from "../durable/audit-log.do.ts";
import { relayAuditOutbox } from "../durable/audit-log.outbox.ts";
import { type AuditEntry, auditStatement } from "../lib/audit.d1.ts";
import { ADMIN, BASE_URL, deployAndWait, projectId, sampleManifest, waitForDeploy } from "./deploy-helpers.ts";
import { INGEST_KEY } from "./helpers.ts";

interface EntryBody {
  id: string;
  at: number;
  time: string;
  type: string;
  actor: string;
  project_id: string | null;
  details: Record<string, unknown>;
}
interface ListBody {
  entries: EntryBody[];
  next_cursor: string | null;
}

const HOUR_MS = 3_600_000;

function auditUrl(params: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, String(value));
  return `${BASE_URL}/v1/admin/audit?${query.toString()}`;
}

function getAudit(
  params: Record<string, string | number | undefined>,
  headers: HeadersInit = ADMIN,
): Promise<Response> {
  return exports.default.fetch(auditUrl(params), { headers });
}

async function list(params: Record<string, string | number>): Promise<ListBody> {
  const response = await getAudit(params);
  if (response.status !== 200) throw new Error(`GET audit → ${response.status}: ${await response.text()}`);
  return response.json<ListBody>();
}

/** Writes entries into the outbox as the deploy workflow does (same statement, chosen time). */
async function write(entries: (AuditEntry & { at: number })[]): Promise<void> {
  await env.DB.batch(entries.map((entry) => auditStatement(env.DB, entry, entry.at)));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("GET /v1/admin/audit", () => {
  it("a real deploy and down appear with their types and actors, relayed into the day's AuditLog object", async ({
    expect,
  }) => {
    const project = projectId("audit");
    await deployAndWait(sampleManifest(project));
    const down = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}?confirm=${project}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(down.status).toBe(202);
    const { deploy_id } = await down.json<{ deploy_id: string }>();
    expect((await waitForDeploy(deploy_id)).status).toBe("complete");

    const { entries } = await list({ project_id: project });
    expect(entries.map((entry) => entry.type)).toEqual([
      "deploy.requested",
      "deploy.completed",
      "down.requested",
      "down.completed",
    ]);
    expect(entries.map((entry) => entry.actor)).toEqual([
      "webhook",
      "system",
      expect.stringMatching(/^admin:[0-9a-f]{16}$/),
      "system",
    ]);
    expect(entries[3]?.details).toMatchObject({ deploy_id });
    expect(entries.every((entry) => entry.time === new Date(entry.at).toISOString())).toBe(true);

    // The query relayed the outbox: every row is marked shipped and held by its day's object.
    const unshipped = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_log WHERE project_id = ? AND shipped_at IS NULL",
    )
      .bind(project)
      .first<{ n: number }>();
    expect(unshipped?.n).toBe(0);
    const day = auditDay(entries[0]?.at ?? Date.now());
    const held = await auditLog(env, day).query({
      from: 0,
      to: Date.now() + HOUR_MS,
      types: [],
      typePrefixes: [],
      projectId: project,
      afterAt: null,
      afterId: null,
      limit: 100,
    });
    expect(held.ok && held.value.entries.filter((entry) => auditDay(entry.at) === day).length).toBe(
      entries.filter((entry) => auditDay(entry.at) === day).length,
    );
  });

  it("records admin actions that change no project (a rate-limit reset), with the admin as actor", async ({
    expect,
  }) => {
    const identifier = `ip:audit-${crypto.randomUUID()}`;
    const from = Date.now();
    const reset = await exports.default.fetch(`${BASE_URL}/v1/admin/rate-limits/${identifier}/reset`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(reset.status).toBe(200);
    const { entries } = await list({ type: "admin.action", from });
    expect(entries.filter((entry) => entry.details.identifier === identifier)).toEqual([
      expect.objectContaining({
        type: "admin.action",
        actor: expect.stringMatching(/^admin:[0-9a-f]{16}$/),
        project_id: null,
        details: expect.objectContaining({ action: "rate_limit.reset", identifier }),
      }),
    ]);
  });

  it("needs the admin token: none → 401, an ingest key → 403", async ({ expect }) => {
    expect((await getAudit({}, {})).status).toBe(401);
    const forbidden = await getAudit({}, { authorization: `Bearer ${INGEST_KEY}` });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
  });

  it("filters by time range (epoch ms or ISO 8601), exact types and type prefixes", async ({ expect }) => {
    const project = projectId("audit-filter");
    const base = Date.now() - 10 * HOUR_MS;
    const at = (hours: number) => base + hours * HOUR_MS;
    await write([
      { id: `${project}-1`, at: at(1), type: "deploy.requested", actor: "webhook", projectId: project },
      { id: `${project}-2`, at: at(2), type: "rollback.requested", actor: "admin:x", projectId: project },
      { id: `${project}-3`, at: at(3), type: "rollback.completed", actor: "system", projectId: project },
      { id: `${project}-4`, at: at(4), type: "admin.action", actor: "admin:x", projectId: project },
    ]);
    const ids = async (params: Record<string, string | number>) =>
      (await list({ project_id: project, ...params })).entries.map((entry) => entry.id.slice(project.length + 1));

    expect(await ids({})).toEqual(["1", "2", "3", "4"]);
    expect(await ids({ from: at(2), to: at(4) })).toEqual(["2", "3"]);
    expect(await ids({ from: new Date(at(3)).toISOString(), to: new Date(at(4) + 1).toISOString() })).toEqual([
      "3",
      "4",
    ]);
    expect(await ids({ type: "rollback.*" })).toEqual(["2", "3"]);
    expect(await ids({ type: "admin.action,deploy.requested" })).toEqual(["1", "4"]);
    expect(await ids({ type: "rollback.*", from: at(3) })).toEqual(["3"]);
  });

  it("pages with next_cursor (JSON) and X-Next-Cursor (CSV, later pages without a header)", async ({ expect }) => {
    const project = projectId("audit-page");
    const base = Date.now() - HOUR_MS;
    await write(
      [1, 2, 3, 4, 5].map((n) => ({
        id: `${project}-${n}`,
        at: base + n,
        type: "admin.action" as const,
        actor: "admin:x",
        projectId: project,
      })),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ListBody = await list({ project_id: project, limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.entries.map((entry) => entry.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([1, 2, 3, 4, 5].map((n) => `${project}-${n}`));

    const first = await getAudit({ project_id: project, limit: 3, format: "csv" });
    const next = first.headers.get("x-next-cursor");
    expect(next).toBeTruthy();
    const second = await getAudit({ project_id: project, limit: 3, format: "csv", cursor: next ?? "" });
    expect(second.headers.get("x-next-cursor")).toBeNull();
    const rows = `${await first.text()}${await second.text()}`.split("\r\n").filter((line) => line.length > 0);
    expect(rows[0]).toBe("id,time,at,type,actor,project_id,details");
    expect(rows.slice(1).map((row) => row.split(",")[0])).toEqual([1, 2, 3, 4, 5].map((n) => `${project}-${n}`));
  });

  it("exports CSV with RFC 4180 quoting and every formula-like cell neutralised", async ({ expect }) => {
    const project = projectId("audit-csv");
    const at = Date.now() - 5 * 60_000;
    await write([
      {
        id: `${project}-evil`,
        at,
        type: "admin.action",
        actor: "@attacker",
        projectId: project,
        details: { note: '=HYPERLINK("http://evil.example","click")', lines: "a,b\r\nc" },
      },
      { id: `-${project}`, at: at + 1, type: "admin.action", actor: "+1", projectId: project },
    ]);
    const response = await getAudit({ project_id: project, format: "csv" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).toMatch(
      /^attachment; filename="shipyard-audit-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv"$/,
    );
    const text = await response.text();
    const time = new Date(at).toISOString();
    expect(text).toBe(
      "id,time,at,type,actor,project_id,details\r\n" +
        `${project}-evil,${time},${at},admin.action,'@attacker,${project},` +
        `"{""note"":""=HYPERLINK(\\""http://evil.example\\"",\\""click\\"")"",""lines"":""a,b\\r\\nc""}"\r\n` +
        `'-${project},${new Date(at + 1).toISOString()},${at + 1},admin.action,'+1,${project},{}\r\n`,
    );
  });

  it("is idempotent by id: a rewritten id, a repeated relay and a direct re-record store one entry", async ({
    expect,
  }) => {
    const project = projectId("audit-idem");
    const at = Date.now() - 60_000;
    const id = `${project}:completed`;
    await write([{ id, at, type: "deploy.completed", actor: "system", projectId: project }]);
    // A retried workflow step writes the same id again, later: the outbox keeps the first.
    await write([{ id, at: at + 5_000, type: "deploy.completed", actor: "system", projectId: project }]);
    expect((await list({ project_id: project })).entries.map((entry) => [entry.id, entry.at])).toEqual([[id, at]]);

    // A crash between the object's acknowledgement and the outbox mark: the rows ship again.
    await env.DB.prepare("UPDATE audit_log SET shipped_at = NULL WHERE id = ?").bind(id).run();
    const recordSpy = vi.spyOn(AuditLog.prototype, "record");
    expect((await relayAuditOutbox(env)).pending).toBe(false);
    const replies = await Promise.all(recordSpy.mock.results.map((result) => result.value));
    expect(replies).toContainEqual({ ok: true, value: expect.objectContaining({ duplicates: 1 }) });
    const direct = await auditLog(env, auditDay(at)).record([
      { id, at, type: "deploy.completed", actor: "system", projectId: project, details: "{}" },
    ]);
    expect(direct).toEqual({ ok: true, value: { inserted: 0, duplicates: 1 } });
    expect((await list({ project_id: project })).entries).toHaveLength(1);
  });

  it("loses nothing while the AuditLog object fails: entries are read from the outbox, shipped later", async ({
    expect,
  }) => {
    const project = projectId("audit-down");
    const at = Date.now() - 60_000;
    const failing = vi.spyOn(AuditLog.prototype, "record").mockRejectedValue(new Error("object unavailable"));
    await write([{ id: `${project}-1`, at, type: "enforcement.applied", actor: "system", projectId: project }]);
    expect((await list({ project_id: project })).entries.map((entry) => entry.type)).toEqual(["enforcement.applied"]);
    const pending = await env.DB.prepare("SELECT shipped_at FROM audit_log WHERE id = ?")
      .bind(`${project}-1`)
      .first<{ shipped_at: number | null }>();
    expect(pending?.shipped_at).toBeNull();

    failing.mockRestore();
    expect(await relayAuditOutbox(env)).toMatchObject({ pending: false });
    expect((await list({ project_id: project })).entries.map((entry) => entry.type)).toEqual(["enforcement.applied"]);
  });

  it("refuses bad queries with 400", async ({ expect }) => {
    for (const params of [
      { from: 2_000, to: 1_000 },
      { since: 1 },
      { type: "Deploy Completed" },
      { format: "xml" },
      { limit: 0 },
      { cursor: "not-a-cursor" },
      { from: "yesterday" },
    ]) {
      const response = await getAudit(params);
      expect(response.status, JSON.stringify(params)).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_query" } });
    }
  });

  it("is documented in the OpenAPI document with its query parameters and the CSV answer", async ({ expect }) => {
    const document = await (
      await exports.default.fetch(`${BASE_URL}/v1/openapi.json`)
    ).json<{
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { name: string; in: string }[];
            responses: Record<string, { content: Record<string, unknown> }>;
          }
        >
      >;
    }>();
    const operation = document.paths["/v1/admin/audit"]?.get;
    expect(operation?.parameters?.map((parameter) => parameter.name)).toEqual(
      expect.arrayContaining(["from", "to", "type", "project_id", "format", "limit", "cursor"]),
    );
    expect(Object.keys(operation?.responses["200"]?.content ?? {})).toEqual(["application/json", "text/csv"]);
  });
});
