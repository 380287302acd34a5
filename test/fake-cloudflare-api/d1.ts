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
 */
import { randomUUID } from "node:crypto";
import { DatabaseSync } from "node:sqlite";

export const D1_PATH = /^\/accounts\/(?<account>[^/]+)\/d1\/database(?:\/(?<uuid>[^/]+)(?<query>\/query)?)?$/;

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
