import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { D1Client, type MultiRowInsert, multiRowInserts } from "./d1.ts";
import { type RuntimeEventRow, insertRuntimeEventStatements } from "./runtime-events.d1.ts";

/**
 * D1's documented limits (developers.cloudflare.com/d1/platform/limits): "Maximum bound parameters
 * per query: 100" and "Maximum SQL statement length: 100,000 bytes (100 KB)". Written out here,
 * not imported, so the test checks the code against the documentation rather than against itself.
 * The byte count includes the bound values, as lib/d1.ts does, which is the safe reading.
 */
const MAX_PARAMS = 100;
const MAX_STATEMENT_BYTES = 100_000;

const encoder = new TextEncoder();

interface Recorded {
  sql: string;
  params: unknown[];
}

/** The real D1 binding, recording the SQL and bound values of every statement prepared through it. */
function recordingDb() {
  const statements: Recorded[] = [];
  return {
    statements,
    prepare(query: string): D1PreparedStatement {
      const statement = env.DB.prepare(query);
      const bind = statement.bind.bind(statement);
      statement.bind = (...values: unknown[]) => {
        statements.push({ sql: query, params: values });
        return bind(...values);
      };
      return statement;
    },
  };
}

function statementBytes({ sql, params }: Recorded): number {
  return params.reduce<number>(
    (sum, value) => sum + (typeof value === "string" ? encoder.encode(value).byteLength : 8),
    encoder.encode(sql).byteLength,
  );
}

function insertOf(table: string, columns: number): MultiRowInsert {
  const names = Array.from({ length: columns }, (_, i) => `c${i}`).join(", ");
  return { head: `INSERT INTO ${table} (${names})`, tail: "ON CONFLICT DO NOTHING", columns };
}

function rowsOf(columns: number, count: number, value: (row: number, column: number) => unknown): unknown[][] {
  return Array.from({ length: count }, (_, r) => Array.from({ length: columns }, (_, c) => value(r, c)));
}

describe("multiRowInserts", () => {
  it("row 12: narrow rows → at most 100 bound parameters per statement, every row once and in order", ({ expect }) => {
    const db = recordingDb();
    const rows = rowsOf(6, 1_000, (r, c) => (c === 0 ? `id-${r}` : r * 10 + c));
    const statements = multiRowInserts(db, insertOf("t", 6), rows);
    expect(statements).toHaveLength(db.statements.length);
    // 16 rows of 6 values make 96 parameters: as few statements as the limit allows.
    expect(db.statements).toHaveLength(Math.ceil(1_000 / 16));
    for (const recorded of db.statements) {
      expect(recorded.params.length).toBeLessThanOrEqual(MAX_PARAMS);
      expect(recorded.sql.match(/\?/g)?.length).toBe(recorded.params.length);
    }
    expect(db.statements.flatMap((s) => s.params)).toEqual(rows.flat());
  });

  it.for([7, 33, 50, 99, 100])(
    "row 12: wide rows of %i columns → at most 100 bound parameters",
    (columns, { expect }) => {
      const db = recordingDb();
      const rows = rowsOf(columns, 25, (r, c) => `${r}:${c}`);
      multiRowInserts(db, insertOf("t", columns), rows);
      for (const recorded of db.statements) {
        expect(recorded.params.length).toBeLessThanOrEqual(MAX_PARAMS);
        expect(recorded.params.length % columns).toBe(0);
      }
      expect(db.statements).toHaveLength(Math.ceil(25 / Math.floor(MAX_PARAMS / columns)));
      expect(db.statements.flatMap((s) => s.params)).toEqual(rows.flat());
    },
  );

  it("row 12: a row wider than 100 columns is refused instead of binding more than 100 parameters", ({ expect }) => {
    const db = recordingDb();
    expect(() =>
      multiRowInserts(
        db,
        insertOf("t", 101),
        rowsOf(101, 1, () => 1),
      ),
    ).toThrow(/100/);
    expect(db.statements).toEqual([]);
  });

  it("row 12: large rows (up to 16 KiB, multi-byte UTF-8) → never more than 100 KB per statement", ({ expect }) => {
    // Sweep row sizes so that statements end at every distance below the limit.
    for (let size = 4_000; size <= 16_384; size += 337) {
      const db = recordingDb();
      const rows = rowsOf(6, 30, (r, c) =>
        c === 4
          ? "€".repeat(Math.floor(size / 6)) + "x".repeat(size - 3 * Math.floor(size / 6))
          : c === 0
            ? `id-${r}`
            : r,
      );
      multiRowInserts(db, insertOf("t", 6), rows);
      for (const recorded of db.statements) {
        expect(statementBytes(recorded), `rows of ${size} bytes`).toBeLessThanOrEqual(MAX_STATEMENT_BYTES);
        expect(recorded.params.length).toBeLessThanOrEqual(MAX_PARAMS);
      }
      expect(db.statements.flatMap((s) => s.params)).toEqual(rows.flat());
      // Large rows still share statements: not one statement per row.
      expect(db.statements.length).toBeLessThan(rows.length);
    }
  });

  it("row 12: the statements run on real D1, wide and large", async ({ expect }) => {
    const columns = 100;
    const names = Array.from({ length: columns }, (_, i) => `c${i} TEXT`).join(", ");
    await env.DB.prepare(`CREATE TABLE IF NOT EXISTS row12_wide (${names})`).run();
    const d1 = new D1Client(env.DB);
    const wide = rowsOf(columns, 7, (r, c) => `${r}-${c}`);
    const insert = { head: insertOf("row12_wide", columns).head, tail: "", columns };
    await d1.batch(multiRowInserts(d1, insert, wide));
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM row12_wide").first<{ n: number }>();
    expect(count?.n).toBe(7);

    const projectId = `row12-${crypto.randomUUID()}`;
    const large: RuntimeEventRow[] = Array.from({ length: 50 }, (_, i) => ({
      id: `${projectId}-${i}`,
      project_id: projectId,
      type: "big",
      ts: i,
      data: JSON.stringify({ pad: "€".repeat(5_000) }),
      received_at: i,
    }));
    const statements = insertRuntimeEventStatements(d1, large);
    expect(statements.length).toBeGreaterThan(1);
    await d1.batch(statements);
    const stored = await env.DB.prepare(
      "SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS chars FROM runtime_events WHERE project_id = ?",
    )
      .bind(projectId)
      .first<{ n: number; chars: number }>();
    expect(stored).toEqual({ n: 50, chars: 50 * JSON.stringify({ pad: "€".repeat(5_000) }).length });
  });
});
