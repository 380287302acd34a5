/**
 * durable/sql-schema.ts inside a real SQLite-backed Durable Object (a RuntimeEventShard, with a
 * schema table of the test's own so the shard's schema is left alone).
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, it } from "vitest";
import { makeEvents, shard, uid } from "../test/helpers.ts";
import { RUNTIME_EVENT_SHARD_MIGRATIONS } from "./runtime-event-shard.migrations.ts";
import { SCHEMA_TABLE, SchemaVersionError, type SqlMigration, applySchema, validateMigrations } from "./sql-schema.ts";

const TABLE = "_test_schema";

const V1: SqlMigration = {
  version: 1,
  name: "notes",
  up: "CREATE TABLE test_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
};

/** A v2 that counts how often it runs (the callback runs in this isolate). */
function v2(runs: { count: number }): SqlMigration {
  return {
    version: 2,
    name: "note tags",
    up: (sql) => {
      runs.count++;
      sql.exec("ALTER TABLE test_notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'");
    },
  };
}

function tables(sql: SqlStorage): string[] {
  return sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .toArray()
    .map((row) => row.name);
}

function versions(sql: SqlStorage, table = TABLE): number[] {
  return sql
    .exec<{ version: number }>(`SELECT version FROM ${table} ORDER BY version`)
    .toArray()
    .map((row) => row.version);
}

/** Runs `fn` and returns what it threw (errors do not cross runInDurableObject as classes). */
function thrown(fn: () => unknown): { name: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof Error
      ? { name: error.name, message: error.message }
      : { name: "?", message: String(error) };
  }
}

describe("applySchema", () => {
  it("data survives a migration and an eviction; each migration runs once", async ({ expect }) => {
    const stub = shard(uid("schema"));
    const runs = { count: 0 };
    await runInDurableObject(stub, (_instance, state) => {
      expect(applySchema(state.storage, [V1], TABLE)).toBe(1);
      state.storage.sql.exec("INSERT INTO test_notes (body) VALUES ('first'), ('second')");
    });
    await evictDurableObject(stub);

    await runInDurableObject(stub, (_instance, state) => {
      expect(applySchema(state.storage, [V1, v2(runs)], TABLE)).toBe(2);
      expect(state.storage.sql.exec("SELECT body, tag FROM test_notes ORDER BY id").toArray()).toEqual([
        { body: "first", tag: "none" },
        { body: "second", tag: "none" },
      ]);
      expect(versions(state.storage.sql)).toEqual([1, 2]);
    });
    expect(runs.count).toBe(1);
    await evictDurableObject(stub);

    await runInDurableObject(stub, (_instance, state) => {
      expect(applySchema(state.storage, [V1, v2(runs)], TABLE)).toBe(2);
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM test_notes").one()).toEqual({ n: 2 });
      expect(versions(state.storage.sql)).toEqual([1, 2]);
    });
    expect(runs.count).toBe(1);
  });

  it("the shard's own schema is applied once, before its first request, and its data survives eviction", async ({
    expect,
  }) => {
    const stub = shard(uid("schema-shard"));
    const ingest = await stub.ingest(makeEvents(uid("schema-p"), 4));
    expect(ingest).toEqual({ ok: true, value: { stored: 4, duplicates: 0 } });
    await evictDurableObject(stub);

    const status = await stub.status();
    expect(status.schemaVersion).toBe(RUNTIME_EVENT_SHARD_MIGRATIONS.length);
    expect(status.ledgerSize).toBe(4);
    await runInDurableObject(stub, (_instance, state) => {
      expect(versions(state.storage.sql, SCHEMA_TABLE)).toEqual(RUNTIME_EVENT_SHARD_MIGRATIONS.map((m) => m.version));
    });
  });

  it("refuses to run against a newer stored version", async ({ expect }) => {
    const stub = shard(uid("schema-newer"));
    const failure = await runInDurableObject(stub, (_instance, state) => {
      applySchema(state.storage, [V1, v2({ count: 0 })], TABLE);
      // A rollback to code that only knows v1.
      return thrown(() => applySchema(state.storage, [V1], TABLE));
    });
    expect(failure).toEqual({ name: "SchemaVersionError", message: expect.stringMatching(/version 2.*only 1/) });
  });

  it("rejects migration lists with gaps, duplicates or a wrong start, before touching storage", async ({ expect }) => {
    const gap = [V1, { ...V1, version: 3, name: "skips 2" }];
    for (const migrations of [gap, [{ ...V1, version: 2 }], [V1, V1]]) {
      expect(() => validateMigrations(migrations)).toThrow(SchemaVersionError);
    }
    const stub = shard(uid("schema-gap"));
    const result = await runInDurableObject(stub, (_instance, state) => ({
      error: thrown(() => applySchema(state.storage, gap, "_gap_schema")),
      tables: tables(state.storage.sql),
    }));
    expect(result.error).toEqual({
      name: "SchemaVersionError",
      message: expect.stringMatching(/version 3, expected 2/),
    });
    expect(result.tables).not.toContain("_gap_schema");
    expect(result.tables).not.toContain("test_notes");
  });

  it("a failing migration rolls back entirely and is not recorded", async ({ expect }) => {
    const stub = shard(uid("schema-rollback"));
    const broken: SqlMigration = {
      version: 2,
      name: "half done",
      up: (sql) => {
        sql.exec("CREATE TABLE test_half (id INTEGER)");
        throw new Error("migration bug");
      },
    };
    const result = await runInDurableObject(stub, (_instance, state) => {
      applySchema(state.storage, [V1], TABLE);
      const error = thrown(() => applySchema(state.storage, [V1, broken], TABLE));
      return { error, tables: tables(state.storage.sql), versions: versions(state.storage.sql) };
    });
    expect(result.error?.message).toBe("migration bug");
    expect(result.tables).not.toContain("test_half");
    expect(result.versions).toEqual([1]);
  });
});
