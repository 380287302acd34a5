/**
 * The fake's D1 databases (the account-level D1 API), with the real API's rules as wrangler's
 * client relies on them (cloudflare/workers-sdk packages/wrangler/src/d1/create.ts and
 * provisioning's createD1Database: a name already taken is error code 7502 "A database with that
 * name already exists"; `GET /d1/database?name=` filters the list by name; each database has a
 * uuid, the id a Worker binds it by, `{type: "d1", name, id}`). `/query` runs the SQL for real
 * in an in-memory SQLite database (node:sqlite), all statements of one call in a transaction, and
 * answers a SQL error as a 400 with code 7500 and SQLite's message, as D1 does.
 *   GET  /accounts/:id/d1/database?name=<name>   list (one page)
 *   POST /accounts/:id/d1/database               create {name}
 *   GET  /accounts/:id/d1/database/:uuid         details (file_size, num_tables)
 *   POST /accounts/:id/d1/database/:uuid/query   {sql, params?}
 *   DELETE /accounts/:id/d1/database/:uuid       delete
 *   POST /accounts/:id/d1/database/:uuid/export  {output_format: "polling", current_bookmark?}: the first
 *        call starts the export and answers its `at_bookmark` (no status yet), a poll with that
 *        bookmark answers `status: "complete"` and `result: {filename, signed_url}`; the signed URL
 *        (served by the fake outside the API, no token) answers the SQL (cloudflare-typescript's
 *        DatabaseExportResponse; wrangler's d1 export polls the same way)
 */
import { randomUUID } from "node:crypto";
import { DatabaseSync } from "node:sqlite";

export const D1_PATH =
  /^\/accounts\/(?<account>[^/]+)\/d1\/database(?:\/(?<uuid>[^/]+)(?:(?<query>\/query)|(?<export>\/export))?)?$/;

/** Where the fake serves an export's SQL (the "signed URL"), outside the API prefix. */
export const D1_EXPORT_PATH = /^\/__d1-export\/(?<token>[0-9a-f-]+)$/;

interface FakeDatabase {
  uuid: string;
  name: string;
  createdAt: string;
  sqlite: DatabaseSync;
}

/** A D1 API answer: HTTP status, and the envelope's result or its first error. */
export type D1Answer = { ok: true; result: D1Json } | { ok: false; status: number; code: number; message: string };

/** JSON the fake answers with. */
export type D1Json = string | number | boolean | null | D1Json[] | { [key: string]: D1Json };

const NAME = /^[a-z0-9][a-z0-9-_]{0,63}$/;

export class FakeD1 {
  readonly #databases = new Map<string, FakeDatabase>();
  /** Exports by bookmark: started, then complete with the dump at a signed URL token. */
  readonly #exports = new Map<string, { uuid: string; token: string | null }>();
  readonly #dumps = new Map<string, string>();
  /** The fake's own origin, for signed URLs (set when it starts listening). */
  origin = "http://127.0.0.1";

  /** The SQL of a finished export, by its signed URL's token. */
  dump(token: string): string | undefined {
    return this.#dumps.get(token);
  }

  /** Whether the account has a database with this uuid (what a Worker's d1 binding must name). */
  exists(account: string, uuid: string): boolean {
    return this.#databases.has(`${account}/${uuid}`);
  }

  handle(method: string, url: URL, groups: Record<string, string | undefined>, body: string): D1Answer {
    const account = groups["account"] ?? "";
    const uuid = groups["uuid"];
    if (uuid === undefined && method === "GET") {
      const name = url.searchParams.get("name");
      return {
        ok: true,
        result: this.#of(account)
          .filter((db) => name === null || db.name === name)
          .map(info),
      };
    }
    if (uuid === undefined && method === "POST") return this.#create(account, body);
    const database = uuid === undefined ? undefined : this.#databases.get(`${account}/${uuid}`);
    if (database === undefined)
      return { ok: false, status: 404, code: 7404, message: `The database ${uuid ?? ""} could not be found` };
    if (groups["export"] !== undefined && method === "POST") return this.#export(database, body);
    if (groups["query"] === undefined && method === "DELETE") {
      database.sqlite.close();
      this.#databases.delete(`${account}/${database.uuid}`);
      return { ok: true, result: null };
    }
    if (groups["query"] === undefined && method === "GET") return { ok: true, result: info(database) };
    if (groups["query"] !== undefined && method === "POST") return this.#query(database, body);
    return { ok: false, status: 405, code: 10405, message: `Method ${method} not allowed here (fake)` };
  }

  #of(account: string): FakeDatabase[] {
    return [...this.#databases].filter(([key]) => key.startsWith(`${account}/`)).map(([, db]) => db);
  }

  #create(account: string, body: string): D1Answer {
    const parsed: unknown = JSON.parse(body || "{}");
    const name = typeof parsed === "object" && parsed !== null && "name" in parsed ? parsed.name : undefined;
    if (typeof name !== "string" || !NAME.test(name)) {
      return {
        ok: false,
        status: 400,
        code: 7400,
        message: "The request is malformed: name must be lowercase letters, digits, - and _",
      };
    }
    if (this.#of(account).some((db) => db.name === name)) {
      return { ok: false, status: 400, code: 7502, message: "A database with that name already exists" };
    }
    const database: FakeDatabase = {
      uuid: randomUUID(),
      name,
      createdAt: new Date().toISOString(),
      sqlite: new DatabaseSync(":memory:"),
    };
    this.#databases.set(`${account}/${database.uuid}`, database);
    return { ok: true, result: info(database) };
  }

  #export(database: FakeDatabase, body: string): D1Answer {
    const parsed: unknown = JSON.parse(body || "{}");
    const request = typeof parsed === "object" && parsed !== null ? parsed : {};
    if (!("output_format" in request) || request.output_format !== "polling") {
      return { ok: false, status: 400, code: 7400, message: "The request is malformed: output_format must be polling" };
    }
    const bookmark = "current_bookmark" in request ? request.current_bookmark : undefined;
    if (bookmark === undefined) {
      const at = `bookmark-${randomUUID()}`;
      this.#exports.set(at, { uuid: database.uuid, token: null });
      return { ok: true, result: { success: true, type: "export", at_bookmark: at, messages: ["Generating SQL"] } };
    }
    const job = typeof bookmark === "string" ? this.#exports.get(bookmark) : undefined;
    if (typeof bookmark !== "string" || job === undefined || job.uuid !== database.uuid) {
      return { ok: false, status: 400, code: 7400, message: "The request is malformed: unknown current_bookmark" };
    }
    if (job.token === null) {
      job.token = randomUUID();
      this.#dumps.set(job.token, dumpSql(database.sqlite));
    }
    return {
      ok: true,
      result: {
        success: true,
        type: "export",
        at_bookmark: bookmark,
        status: "complete",
        messages: ["Uploaded part 1"],
        result: { filename: `${database.name}.sql`, signed_url: `${this.origin}/__d1-export/${job.token}` },
      },
    };
  }

  #query(database: FakeDatabase, body: string): D1Answer {
    const parsed: unknown = JSON.parse(body || "{}");
    const sql = typeof parsed === "object" && parsed !== null && "sql" in parsed ? parsed.sql : undefined;
    if (typeof sql !== "string" || sql.trim() === "")
      return { ok: false, status: 400, code: 7400, message: "The request is malformed: sql is required" };
    const params =
      typeof parsed === "object" && parsed !== null && "params" in parsed && Array.isArray(parsed.params)
        ? parsed.params
        : [];
    const db = database.sqlite;
    // One statement answers its rows; several run as a script (rows are not reported then).
    const single = !sql.trim().replace(/;\s*$/, "").includes(";");
    let results: D1Json[] = [];
    db.exec("BEGIN");
    try {
      if (single) {
        const bound = params.map((value: unknown) => sqlInput(value));
        results = db
          .prepare(sql)
          .all(...bound)
          .map((row) => rowJson(row));
      } else db.exec(sql);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      return {
        ok: false,
        status: 400,
        code: 7500,
        message: `${error instanceof Error ? error.message : String(error)}: SQLITE_ERROR`,
      };
    }
    return { ok: true, result: [{ results, success: true, meta: { changed_db: true } }] };
  }
}

/** A bound parameter as node:sqlite takes it (D1 binds booleans as 0/1). */
function sqlInput(value: unknown): string | number | null {
  if (typeof value === "boolean") return Number(value);
  if (typeof value === "string" || typeof value === "number") return value;
  return null;
}

/** A node:sqlite row as the JSON D1 answers (integers beyond 2^53 and blobs are not modelled). */
function rowJson(row: Record<string, unknown>): D1Json {
  const out: Record<string, D1Json> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] =
      typeof value === "bigint"
        ? Number(value)
        : typeof value === "string" || typeof value === "number" || value === null
          ? value
          : value instanceof Uint8Array
            ? [...value]
            : null;
  }
  return out;
}

function info(db: FakeDatabase) {
  const tables = db.sqlite.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get();
  const pages = db.sqlite.prepare("PRAGMA page_count").get();
  const size = db.sqlite.prepare("PRAGMA page_size").get();
  return {
    uuid: db.uuid,
    name: db.name,
    version: "production",
    created_at: db.createdAt,
    num_tables: Number(tables?.["n"] ?? 0),
    file_size: Number(pages?.["page_count"] ?? 0) * Number(size?.["page_size"] ?? 0),
  };
}

/** The database as SQL: each table's CREATE and its rows, then indexes (what an export holds). */
function dumpSql(db: DatabaseSync): string {
  const objects = db
    .prepare(
      "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, rowid",
    )
    .all();
  const lines: string[] = [];
  for (const object of objects) {
    lines.push(`${String(object["sql"])};`);
    if (object["type"] !== "table") continue;
    const name = `"${String(object["name"]).replaceAll('"', '""')}"`;
    for (const row of db.prepare(`SELECT * FROM ${name}`).all()) {
      const values = Object.values(row).map((value) =>
        value === null
          ? "NULL"
          : typeof value === "number" || typeof value === "bigint"
            ? String(value)
            : value instanceof Uint8Array
              ? `X'${Buffer.from(value).toString("hex")}'`
              : `'${typeof value === "string" ? value.replaceAll("'", "''") : ""}'`,
      );
      lines.push(`INSERT INTO ${name} VALUES(${values.join(",")});`);
    }
  }
  return lines.map((line) => `${line}\n`).join("");
}
