import { DurableObject } from "cloudflare:workers";
import { describeError } from "../lib/log.ts";
import type { Result } from "../lib/result.ts";
import type { D1Request, D1Response, D1Statement, D1WireResult } from "../platform/d1-protocol.ts";

/** One migration file of a tenant's D1 binding (`migrations_dir`), as the manifest carries it. */
export interface TenantMigration {
  name: string;
  sql: string;
}

/** Why a migration did not apply: which file, and SQLite's message. */
export interface MigrationFailure {
  name: string;
  message: string;
}

/** wrangler's bookkeeping table (`wrangler d1 migrations apply`), with the same columns. */
const MIGRATIONS_TABLE = "d1_migrations";

/** SQLite's values; D1 stores a bound boolean as 0/1. */
type SqlValue = string | number | null | ArrayBuffer;

function sqlValue(value: D1Statement["params"][number]): SqlValue {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value !== null && typeof value === "object")
    return Uint8Array.from(atob(value.blob), (c) => c.charCodeAt(0)).buffer;
  return value;
}

/** A result cell as D1 answers it: a blob becomes an array of its bytes. */
function cell(value: SqlStorageValue): unknown {
  return value instanceof ArrayBuffer ? [...new Uint8Array(value)] : value;
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A stored value as an SQL literal (blobs as X'..', text quoted). */
function sqlLiteral(value: SqlStorageValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : value > 0 ? "9e999" : "-9e999";
  if (value instanceof ArrayBuffer) {
    return `X'${[...new Uint8Array(value)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}'`;
  }
  return `'${value.replaceAll("'", "''")}'`;
}

/** Splits SQL text into its statements (`;` outside quotes and comments): D1 `exec` counts them. */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let current = "";
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] ?? "";
    if (quote !== null) {
      current += char;
      if (char === quote) quote = null;
    } else if (char === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end;
      current += "\n";
    } else if (char === "'" || char === '"' || char === "`") {
      quote = char;
      current += char;
    } else if (char === ";") {
      if (current.trim() !== "") out.push(current.trim());
      current = "";
    } else {
      current += char;
    }
  }
  if (current.trim() !== "") out.push(current.trim());
  return out;
}

/**
 * One tenant D1 database on the local platform, one object per (project, binding): its SQLite
 * storage is the tenant's database and nothing else (no Shipyard table but wrangler's
 * `d1_migrations`), so tenants are isolated from each other and from Shipyard's own D1. The
 * tenant reaches it only through its own `TenantD1Binding` (platform/d1-binding.ts).
 */
export class TenantDatabase extends DurableObject<Env> {
  /** Runs a tenant's statements in one transaction (a batch is atomic on D1 too). */
  async query(request: D1Request): Promise<D1Response> {
    const started = performance.now();
    try {
      if (request.op === "exec") {
        const statements = splitStatements(request.sql);
        this.ctx.storage.transactionSync(() => {
          for (const statement of statements) this.ctx.storage.sql.exec(statement);
        });
        return { ok: true, exec: { count: statements.length, duration: performance.now() - started } };
      }
      const results = this.ctx.storage.transactionSync(() =>
        request.statements.map((statement) => this.#run(statement)),
      );
      // The Durable Object's own point-in-time bookmark: it only grows, as D1's do.
      return { ok: true, results, bookmark: await this.ctx.storage.getCurrentBookmark() };
    } catch (error) {
      return { ok: false, error: `D1_ERROR: ${describeError(error)}` };
    }
  }

  /**
   * Applies, in order, the migrations not yet recorded in `d1_migrations`, each in its own
   * transaction with its bookkeeping row (forward-only, like wrangler): a failing one is rolled
   * back and stops the run; the ones before it stay applied.
   */
  async applyMigrations(migrations: TenantMigration[]): Promise<Result<{ applied: string[] }, MigrationFailure>> {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT UNIQUE,
      applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
    )`);
    const done = new Set(
      sql
        .exec<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`)
        .toArray()
        .map((r) => r.name),
    );
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      try {
        this.ctx.storage.transactionSync(() => {
          for (const statement of splitStatements(migration.sql)) sql.exec(statement);
          sql.exec(`INSERT INTO ${MIGRATIONS_TABLE} (name) VALUES (?)`, migration.name);
        });
      } catch (error) {
        return { ok: false, error: { name: migration.name, message: describeError(error) } };
      }
      applied.push(migration.name);
    }
    return { ok: true, value: { applied } };
  }

  /** The names in `d1_migrations`, in the order they were applied. */
  async appliedMigrations(): Promise<string[]> {
    const exists = this.ctx.storage.sql
      .exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`, MIGRATIONS_TABLE)
      .toArray();
    if (exists.length === 0) return [];
    return this.ctx.storage.sql
      .exec<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`)
      .toArray()
      .map((row) => row.name);
  }

  /**
   * The database as SQL text, like `wrangler d1 export` writes it: each table's CREATE statement
   * and its rows as INSERTs, then indexes, triggers and views (`sqlite_sequence` as its rows).
   * The Durable Object's own `_cf_` tables are not the tenant's and are left out.
   */
  async dump(): Promise<string> {
    const sql = this.ctx.storage.sql;
    const objects = sql
      .exec<{ type: string; name: string; sql: string | null }>(
        // `_` is LIKE's wildcard: escaped, or a tenant table such as `acf_log` would be left out.
        `SELECT type, name, sql FROM sqlite_master
         WHERE name NOT LIKE '!_cf!_%' ESCAPE '!' AND name NOT LIKE 'sqlite!_autoindex!_%' ESCAPE '!'
         ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'trigger' THEN 2 ELSE 3 END, rowid`,
      )
      .toArray();
    const lines: string[] = [];
    const sequence: string[] = [];
    for (const object of objects) {
      if (object.type === "table") {
        const rows = [...sql.exec(`SELECT * FROM ${quoteName(object.name)}`).raw()];
        const inserts = rows.map(
          (row) => `INSERT INTO ${quoteName(object.name)} VALUES(${row.map(sqlLiteral).join(",")});`,
        );
        if (object.name === "sqlite_sequence") {
          sequence.push(...(inserts.length > 0 ? ["DELETE FROM sqlite_sequence;", ...inserts] : []));
          continue;
        }
        if (object.sql !== null) lines.push(`${object.sql};`);
        lines.push(...inserts);
      } else if (object.sql !== null) {
        lines.push(`${object.sql};`);
      }
    }
    return [...lines, ...sequence].map((line) => `${line}\n`).join("");
  }

  /** Deletes the database (every table and row): what `down` does to a project's D1. */
  async destroy(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  /** The database's size in bytes (what `GET /v1/projects/:id` reports). */
  async size(): Promise<number> {
    return this.ctx.storage.sql.databaseSize;
  }

  #run(statement: D1Statement): D1WireResult {
    const started = performance.now();
    const sql = this.ctx.storage.sql;
    const cursor = sql.exec(statement.sql, ...statement.params.map(sqlValue));
    const rows = [...cursor.raw()].map((row) => row.map(cell));
    const duration = performance.now() - started;
    const { columnNames, rowsRead, rowsWritten } = cursor;
    const [changes, lastRowId] = sql
      .exec<Record<string, number>>("SELECT changes() AS c, last_insert_rowid() AS l")
      .raw()
      .next().value ?? [0, 0];
    return {
      columns: columnNames,
      rows,
      meta: {
        duration,
        changes: rowsWritten > 0 ? Number(changes) : 0,
        last_row_id: Number(lastRowId),
        rows_read: rowsRead,
        rows_written: rowsWritten,
        size_after: sql.databaseSize,
        changed_db: rowsWritten > 0,
        served_by: "shipyard-local",
        served_by_primary: true,
        total_attempts: 1,
        timings: { sql_duration_ms: duration },
      },
    };
  }
}
