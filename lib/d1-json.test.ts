import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { JSON_ROWS_BUDGET_BYTES, jsonRowInserts } from "./d1.ts";

const encoder = new TextEncoder();

/** Records what each statement would bind, instead of talking to D1. */
function recorder() {
  const statements: { sql: string; params: unknown[] }[] = [];
  const db = {
    prepare(sql: string) {
      const entry = { sql, params: [] as unknown[] };
      statements.push(entry);
      const statement = {
        bind(...params: unknown[]) {
          entry.params = params;
          return statement;
        },
      };
      // The recorder stands in for D1PreparedStatement in a pure function under test.
      // oxlint-disable-next-line typescript/no-unsafe-type-assertion
      return statement as unknown as D1PreparedStatement;
    },
  };
  return { db, statements };
}

const INSERT = { head: "INSERT INTO t (id, data)", tail: "ON CONFLICT(id) DO NOTHING", columns: 2 };

describe("row 12: jsonRowInserts stays within D1's statement limits", () => {
  it("one bound parameter and at most 100 KB per statement, for small, wide and large rows", ({ expect }) => {
    for (const size of [10, 1_000, 16 * 1024, 60_000]) {
      const { db, statements } = recorder();
      const rows = Array.from({ length: 400 }, (_, i) => [`id-${i}`, "é".repeat(size / 2)]);
      jsonRowInserts(db, INSERT, rows);
      let total = 0;
      for (const statement of statements) {
        expect(statement.params).toHaveLength(1);
        const [json] = statement.params;
        expect(typeof json).toBe("string");
        const bytes = encoder.encode(statement.sql).byteLength + encoder.encode(String(json)).byteLength;
        expect(bytes).toBeLessThanOrEqual(100_000);
        const parsed: unknown = JSON.parse(String(json));
        total += Array.isArray(parsed) ? parsed.length : 0;
      }
      expect(total).toBe(rows.length);
      expect(encoder.encode(String(statements[0]?.params[0])).byteLength).toBeLessThanOrEqual(JSON_ROWS_BUDGET_BYTES);
    }
  });

  it("runs on real D1: 5,000 rows with repeats insert each id once, values intact", async ({ expect }) => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS json_rows_probe (id TEXT PRIMARY KEY, data TEXT NOT NULL)");
    const rows = Array.from({ length: 5_000 }, (_, i) => [`p-${i % 4_000}`, JSON.stringify({ i, s: "x\"y'\\z" })]);
    const statements = jsonRowInserts(env.DB, { ...INSERT, head: "INSERT INTO json_rows_probe (id, data)" }, rows);
    expect(statements.length).toBeLessThan(10);
    await env.DB.batch(statements);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM json_rows_probe").first<{ n: number }>();
    expect(count?.n).toBe(4_000);
    const sample = await env.DB.prepare("SELECT data FROM json_rows_probe WHERE id = 'p-7'").first<{ data: string }>();
    expect(JSON.parse(sample?.data ?? "null")).toEqual({ i: 7, s: "x\"y'\\z" });
  });
});
