import { fault } from "./faults.ts";
import { packRanges } from "./pack.ts";
import { utf8Length } from "./utf8.ts";

/**
 * D1 access with accounting. Every round trip to D1 goes through `D1Client`, which counts round
 * trips and statements into a `D1Stats` sink (the benchmark's "D1 round trips per 1,000 events")
 * and carries the `d1.*` fault points.
 */
export interface D1Stats {
  roundTrips: number;
  statements: number;
  rowsWritten: number;
}

export function newD1Stats(): D1Stats {
  return { roundTrips: 0, statements: 0, rowsWritten: 0 };
}

export class D1Client {
  constructor(
    readonly db: D1Database,
    readonly stats: D1Stats = newD1Stats(),
  ) {}

  prepare(query: string): D1PreparedStatement {
    return this.db.prepare(query);
  }

  /** One round trip running `statements` in a single implicit transaction. */
  async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    if (statements.length === 0) return [];
    fault("d1.batch", { statements: statements.length });
    this.stats.roundTrips++;
    this.stats.statements += statements.length;
    const results = await this.db.batch<T>(statements);
    for (const result of results) this.stats.rowsWritten += result.meta.rows_written ?? 0;
    return results;
  }

  /** One round trip running one statement. */
  async run<T = unknown>(statement: D1PreparedStatement): Promise<D1Result<T>> {
    fault("d1.run");
    this.stats.roundTrips++;
    this.stats.statements++;
    const result = await statement.run<T>();
    this.stats.rowsWritten += result.meta.rows_written ?? 0;
    return result;
  }
}

/**
 * D1 limits per statement (developers.cloudflare.com/d1/platform/limits): "Maximum bound
 * parameters per query: 100", "Maximum SQL statement length: 100,000 bytes (100 KB)" (decimal KB).
 */
export const D1_MAX_BOUND_PARAMETERS = 100;
export const D1_MAX_STATEMENT_BYTES = 100_000;

function paramBytes(value: unknown): number {
  if (typeof value === "string") return utf8Length(value);
  if (value === null || value === undefined) return 4;
  return 8;
}

export interface MultiRowInsert {
  /** `INSERT INTO table (a, b, c)` */
  head: string;
  /** Appended after the VALUES list, e.g. `ON CONFLICT(id) DO NOTHING`. */
  tail: string;
  columns: number;
}

/**
 * Multi-row `INSERT … VALUES (…), (…) …` statements covering `rows`, each within D1's per-statement
 * limits: at most 100 bound parameters and at most 100 KB counting the SQL text and the bound
 * values. Wide or large rows simply make more, smaller statements.
 */
export function multiRowInserts(
  db: { prepare(query: string): D1PreparedStatement },
  insert: MultiRowInsert,
  rows: readonly (readonly unknown[])[],
): D1PreparedStatement[] {
  if (insert.columns > D1_MAX_BOUND_PARAMETERS) {
    throw new Error(
      `a row of ${insert.columns} columns cannot be bound in one D1 statement (at most ${D1_MAX_BOUND_PARAMETERS} parameters)`,
    );
  }
  const rowsPerStatement = Math.floor(D1_MAX_BOUND_PARAMETERS / insert.columns);
  const tuple = `(${Array.from({ length: insert.columns }, () => "?").join(", ")})`;
  const fixedBytes = insert.head.length + insert.tail.length + 16;
  const statements: D1PreparedStatement[] = [];
  let params: unknown[] = [];
  let count = 0;
  let bytes = fixedBytes;
  const emit = () => {
    if (count === 0) return;
    const sql = `${insert.head} VALUES ${Array.from({ length: count }, () => tuple).join(", ")} ${insert.tail}`;
    statements.push(db.prepare(sql).bind(...params));
    params = [];
    count = 0;
    bytes = fixedBytes;
  };
  for (const row of rows) {
    if (row.length !== insert.columns) throw new Error(`row has ${row.length} values, expected ${insert.columns}`);
    const rowBytes = tuple.length + 2 + row.reduce<number>((sum, value) => sum + paramBytes(value), 0);
    if (count > 0 && (count >= rowsPerStatement || bytes + rowBytes > D1_MAX_STATEMENT_BYTES)) emit();
    params.push(...row);
    count++;
    bytes += rowBytes;
  }
  emit();
  return statements;
}

/** Bytes of JSON per `jsonRowInserts` statement: under D1's 100 KB, with room for the SQL text. */
export const JSON_ROWS_BUDGET_BYTES = 90_000;

/**
 * The SQL of a json_each insert: `INSERT INTO t (a, b) SELECT value->>0, value->>1 FROM json_each(?)
 * WHERE true ON CONFLICT …`, binding the rows as ONE JSON array of tuples.
 * (`WHERE true` resolves SQLite's parse ambiguity between `SELECT … ON CONFLICT` and a join's ON.)
 */
export function jsonRowsInsertSql(insert: MultiRowInsert): string {
  const select = Array.from({ length: insert.columns }, (_, i) => `value->>${i}`).join(", ");
  return `${insert.head} SELECT ${select} FROM json_each(?) WHERE true ${insert.tail}`;
}

/** A run of rows packed as one JSON array: rows `[from, to)` of the input, `bytes` of UTF-8 JSON. */
export interface JsonRowsPack {
  json: string;
  from: number;
  to: number;
  bytes: number;
}

/**
 * Packs JSON-encoded rows, in order, into JSON arrays of at most `budget` bytes each (a single
 * row larger than the budget gets an array of its own). `sizes` are the rows' UTF-8 lengths, when
 * the caller has them already.
 */
export function packJsonRows(
  rows: readonly string[],
  budget = JSON_ROWS_BUDGET_BYTES,
  sizes: readonly number[] = rows.map(utf8Length),
): JsonRowsPack[] {
  return packRanges(sizes, budget).map(({ from, to, bytes }) => ({
    json: `[${rows.slice(from, to).join(",")}]`,
    from,
    to,
    bytes,
  }));
}

/**
 * Multi-row inserts as json_each statements (`jsonRowsInsertSql`), each binding ≤ 90 KB of rows:
 * one bound parameter per statement, so a flush of thousands of rows is a handful of statements
 * instead of one per 16 rows (D1 counts statements against its per-invocation query limit, and
 * each one costs parse and bind work).
 */
export function jsonRowInserts(
  db: { prepare(query: string): D1PreparedStatement },
  insert: MultiRowInsert,
  rows: readonly (readonly unknown[])[],
): D1PreparedStatement[] {
  const sql = jsonRowsInsertSql(insert);
  const encoded = rows.map((row) => {
    if (row.length !== insert.columns) throw new Error(`row has ${row.length} values, expected ${insert.columns}`);
    return JSON.stringify(row);
  });
  return packJsonRows(encoded).map((packed) => db.prepare(sql).bind(packed.json));
}
