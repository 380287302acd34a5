import { DurableObject } from "cloudflare:workers";
import { type AssetIndex, routeToAssets, serveAsset } from "../platform/assets.ts";
import type { AssetsConfig } from "../schemas/deploy.schema.ts";
import { type SqlMigration, applySchema } from "./sql-schema.ts";

/** Asset bytes are stored in chunks of this size (SQLite rows are capped at 2 MB; an asset may be 25 MiB). */
const CHUNK_BYTES = 1024 * 1024;

const MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "asset blobs by hash, asset index per version",
    up: `
      CREATE TABLE blobs (
        hash    TEXT NOT NULL,      -- 32-hex content hash (SHA-256 prefix) the sender computed
        seq     INTEGER NOT NULL,   -- chunk order
        content BLOB NOT NULL,
        PRIMARY KEY (hash, seq)
      );
      CREATE TABLE versions (
        version_id         TEXT PRIMARY KEY,  -- the LocalPlatform version these assets belong to
        asset_index        TEXT NOT NULL,     -- JSON: path -> {hash, size, content_type}
        config             TEXT NOT NULL,     -- JSON: html_handling, not_found_handling, run_worker_first
        compatibility_date TEXT NOT NULL,
        created_at         INTEGER NOT NULL   -- epoch ms
      );
    `,
  },
];

/** The name of the TenantAssets object of a script. */
export function tenantAssetsName(script: string): string {
  return `assets:${script}`;
}

interface VersionAssets {
  index: AssetIndex;
  config: AssetsConfig;
  compatibilityDate: string;
}

/**
 * The local platform's static assets store, one object per tenant script (the local stand-in for
 * Cloudflare's asset storage behind an upload session): files by content hash, shared by every
 * version that has them, and the index and serving config of each version. It answers asset
 * requests itself, so bytes never travel through the tenant's isolate.
 */
export class TenantAssets extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, MIGRATIONS);
  }

  /** Stores files (base64 content) not stored yet; returns how many were new. Idempotent. */
  async putFiles(files: readonly { hash: string; content: string }[]): Promise<number> {
    let stored = 0;
    for (const file of files) {
      if (this.#sql.exec("SELECT 1 FROM blobs WHERE hash = ? LIMIT 1", file.hash).toArray().length > 0) continue;
      const bytes = Uint8Array.from(atob(file.content), (char) => char.charCodeAt(0));
      this.ctx.storage.transactionSync(() => {
        for (let offset = 0, seq = 0; offset < Math.max(bytes.byteLength, 1); offset += CHUNK_BYTES, seq++) {
          this.#sql.exec(
            "INSERT INTO blobs (hash, seq, content) VALUES (?, ?, ?)",
            file.hash,
            seq,
            bytes.subarray(offset, offset + CHUNK_BYTES),
          );
        }
      });
      stored++;
    }
    return stored;
  }

  /** Records the assets of a version; every file of `index` must have been stored with putFiles. */
  async bindVersion(
    versionId: string,
    index: AssetIndex,
    config: AssetsConfig,
    compatibilityDate: string,
  ): Promise<void> {
    for (const [path, entry] of Object.entries(index)) {
      if (this.#sql.exec("SELECT 1 FROM blobs WHERE hash = ? LIMIT 1", entry.hash).toArray().length === 0) {
        throw new Error(`asset ${path} (${entry.hash}) was not stored`);
      }
    }
    this.#sql.exec(
      `INSERT INTO versions (version_id, asset_index, config, compatibility_date, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(version_id) DO UPDATE SET asset_index = excluded.asset_index, config = excluded.config`,
      versionId,
      JSON.stringify(index),
      JSON.stringify(config),
      compatibilityDate,
      Date.now(),
    );
  }

  /** The router's answer for a request to `versionId` (null: run the Worker). */
  async route(versionId: string, request: Request): Promise<Response | null> {
    const version = this.#version(versionId);
    if (!version) return null;
    return routeToAssets(request, version.index, version.config, version.compatibilityDate, (hash) => this.#read(hash));
  }

  /** `env.ASSETS.fetch(request)` of `versionId`: the asset, its not-found fallback, or a 404. */
  async fetchAsset(versionId: string, request: Request): Promise<Response> {
    const version = this.#version(versionId);
    const response = version && (await serveAsset(request, version.index, version.config, (hash) => this.#read(hash)));
    return response ?? new Response("Not Found", { status: 404 });
  }

  /** Deletes every file and version (the script was deleted). */
  async clear(): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM blobs");
      this.#sql.exec("DELETE FROM versions");
    });
  }

  #version(versionId: string): VersionAssets | null {
    const row = this.#sql
      .exec<{ asset_index: string; config: string; compatibility_date: string }>(
        "SELECT asset_index, config, compatibility_date FROM versions WHERE version_id = ?",
        versionId,
      )
      .toArray()[0];
    if (!row) return null;
    // Written only by bindVersion from validated values.
    // oxlint-disable-next-line typescript/no-unsafe-type-assertion
    const index = JSON.parse(row.asset_index) as AssetIndex;
    // oxlint-disable-next-line typescript/no-unsafe-type-assertion
    const config = JSON.parse(row.config) as AssetsConfig;
    return { index, config, compatibilityDate: row.compatibility_date };
  }

  async #read(hash: string): Promise<ArrayBuffer | null> {
    const chunks = this.#sql
      .exec<{ content: ArrayBuffer }>("SELECT content FROM blobs WHERE hash = ? ORDER BY seq", hash)
      .toArray();
    if (chunks.length === 0) return null;
    const total = chunks.reduce((sum, chunk) => sum + chunk.content.byteLength, 0);
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(new Uint8Array(chunk.content), offset);
      offset += chunk.content.byteLength;
    }
    return bytes.buffer;
  }
}
