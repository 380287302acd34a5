import { DurableObject } from "cloudflare:workers";
import type { SqlMigration } from "../../durable/sql-schema.ts";
import { applySchema } from "../../durable/sql-schema.ts";

/** Chunk size for stored manifests (SQLite rows are capped at 2 MB; manifests reach 25 MiB). */
const CHUNK_CHARS = 512 * 1024;

const MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "manifest chunks",
    up: `
      CREATE TABLE chunks (seq INTEGER PRIMARY KEY, content TEXT NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
];

/**
 * The deploy manifest of one deploy (object name = deploy id), kept for the workflow that runs it
 * and for later rollbacks to it. Queue messages (128 KB), D1 rows and Workflow step outputs (1 MiB)
 * are all too small for a 25 MiB manifest; a Durable Object's SQLite holds it in chunks.
 */
/** The DeployArtifacts object holding the manifest of deploy `deployId`. */
export function deployArtifacts(
  env: Pick<Env, "DEPLOY_ARTIFACTS">,
  deployId: string,
): DurableObjectStub<DeployArtifacts> {
  return env.DEPLOY_ARTIFACTS.getByName(deployId);
}

export class DeployArtifacts extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, MIGRATIONS);
  }

  /** Stores the manifest JSON once; a second put (a retried request) keeps the first. */
  async put(manifestJson: string): Promise<{ stored: boolean; bytes: number }> {
    const existing = this.#sql.exec("SELECT 1 FROM meta WHERE key = 'complete'").toArray().length > 0;
    if (existing) return { stored: false, bytes: manifestJson.length };
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM chunks");
      for (let offset = 0, seq = 0; offset < manifestJson.length; offset += CHUNK_CHARS, seq++) {
        this.#sql.exec(
          "INSERT INTO chunks (seq, content) VALUES (?, ?)",
          seq,
          manifestJson.slice(offset, offset + CHUNK_CHARS),
        );
      }
      this.#sql.exec("INSERT INTO meta (key, value) VALUES ('complete', ?)", String(Date.now()));
    });
    return { stored: true, bytes: manifestJson.length };
  }

  /** The manifest JSON, or null if none was stored. */
  async get(): Promise<string | null> {
    if (this.#sql.exec("SELECT 1 FROM meta WHERE key = 'complete'").toArray().length === 0) return null;
    return this.#sql
      .exec<{ content: string }>("SELECT content FROM chunks ORDER BY seq")
      .toArray()
      .map((row) => row.content)
      .join("");
  }
}
