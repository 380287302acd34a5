import type { SqlMigration } from "../../durable/sql-schema.ts";

/**
 * LocalPlatform SQLite schema (append-only). One object per tenant script; it plays the part of
 * the Workers for Platforms control plane for that script. Times are epoch ms.
 */
export const LOCAL_PLATFORM_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "versions, module chunks, script state",
    up: `
      CREATE TABLE versions (
        id                  TEXT PRIMARY KEY,
        seq                 INTEGER NOT NULL UNIQUE,
        created_at          INTEGER NOT NULL,
        main_module         TEXT NOT NULL,
        compatibility_date  TEXT NOT NULL,
        compatibility_flags TEXT NOT NULL,   -- JSON array
        uploaded_bindings   TEXT NOT NULL,   -- JSON: bindings as uploaded
        bindings            TEXT NOT NULL    -- JSON: bindings now (settings PATCH changes these)
      );
      -- Module contents in chunks: SQLite rows are capped at 2 MB, bundles are not.
      CREATE TABLE module_chunks (
        version_id TEXT NOT NULL,
        name       TEXT NOT NULL,
        type       TEXT NOT NULL,
        position   INTEGER NOT NULL,         -- module order within the version
        seq        INTEGER NOT NULL,         -- chunk order within the module
        content    TEXT NOT NULL,
        PRIMARY KEY (version_id, position, seq)
      );
      -- Script-level facts: live migration tag, declared classes, class namespaces, current
      -- version, settings revision, deletion generation.
      CREATE TABLE script (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
];
