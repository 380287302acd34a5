/**
 * Versioned, append-only SQLite schemas for Durable Objects.
 *
 * Each object keeps the versions it has applied in `_schema_migrations`, so the check that decides
 * what to run reads durable storage, never an in-memory flag alone: a fresh instance after an
 * eviction, a deploy or a crash re-reads it and finds nothing to do. Call `applySchema` from the
 * constructor (it is synchronous, so it runs before the first request is delivered); each
 * migration runs in its own transaction together with its bookkeeping row.
 *
 * Rules: versions start at 1 and go up by one; a released migration is never edited or removed,
 * only new ones appended. An object whose storage is at a version this code does not know
 * (a rollback after a newer deploy migrated it) refuses to start rather than run against a schema
 * it does not understand.
 */
export interface SqlMigration {
  version: number;
  /** Short description, recorded with the version. */
  name: string;
  /** SQL statements (separated by `;`) or a function for migrations that need logic. */
  up: string | ((sql: SqlStorage) => void);
}

export const SCHEMA_TABLE = "_schema_migrations";

export class SchemaVersionError extends Error {
  override name = "SchemaVersionError";
}

/** Checks a migration list is well formed: versions 1..n, in order, no gaps. */
export function validateMigrations(migrations: readonly SqlMigration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new SchemaVersionError(
        `migration "${migration.name}" has version ${migration.version}, expected ${index + 1} (versions are 1..n, append-only)`,
      );
    }
  });
}

/**
 * Brings the object's SQLite schema up to the newest migration. Returns the version now applied.
 * `table` lets two independent schemas (e.g. a reusable component inside an object) coexist.
 */
export function applySchema(
  storage: DurableObjectStorage,
  migrations: readonly SqlMigration[],
  table: string = SCHEMA_TABLE,
): number {
  validateMigrations(migrations);
  const { sql } = storage;
  sql.exec(
    `CREATE TABLE IF NOT EXISTS ${table} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
  );
  const row = sql.exec<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${table}`).one();
  const current = row.v ?? 0;
  if (current > migrations.length) {
    throw new SchemaVersionError(
      `storage is at schema version ${current} but this code knows only ${migrations.length}; refusing to run against a newer schema`,
    );
  }
  for (const migration of migrations.slice(current)) {
    storage.transactionSync(() => {
      if (typeof migration.up === "string") sql.exec(migration.up);
      else migration.up(sql);
      sql.exec(
        `INSERT INTO ${table} (version, name, applied_at) VALUES (?, ?, ?)`,
        migration.version,
        migration.name,
        Date.now(),
      );
    });
  }
  return migrations.length;
}
