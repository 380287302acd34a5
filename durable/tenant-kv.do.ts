import { DurableObject } from "cloudflare:workers";
import type { KVListKey, KVRequest, KVResponse } from "../platform/kv-protocol.ts";
import { assertNever } from "../lib/result.ts";
import { type SqlMigration, applySchema } from "./sql-schema.ts";

const MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "tenant KV pairs",
    up: `
      CREATE TABLE pairs (
        key        TEXT PRIMARY KEY,
        value      BLOB NOT NULL,
        metadata   TEXT,               -- JSON, absent when put without metadata
        expiration INTEGER             -- epoch seconds, absent when the pair does not expire
      );
    `,
  },
];

/** KV's rules (Cloudflare and Miniflare): a TTL of at least 60 s, metadata of at most 1024 bytes. */
const MIN_TTL_S = 60;
const MAX_METADATA_BYTES = 1024;
const DEFAULT_LIST_LIMIT = 1000;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

/**
 * One tenant KV namespace on the local platform, one object per (project, binding): the pairs in
 * SQLite, expired ones invisible (and dropped when met). Reached only through the version's
 * `TenantKVBinding` (platform/kv-binding.ts).
 */
export class TenantKV extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    applySchema(ctx.storage, MIGRATIONS);
  }

  /** Deletes the namespace's pairs: what `down` does to a project's KV. */
  async destroy(): Promise<void> {
    await this.ctx.storage.deleteAll();
    // A project deployed again under the same id meets this very object: it starts empty.
    applySchema(this.ctx.storage, MIGRATIONS);
  }

  async call(request: KVRequest): Promise<KVResponse> {
    const sql = this.ctx.storage.sql;
    const now = nowSeconds();
    sql.exec("DELETE FROM pairs WHERE expiration IS NOT NULL AND expiration <= ?", now);
    switch (request.op) {
      case "get": {
        const row = sql
          .exec<{ value: ArrayBuffer; metadata: string | null }>(
            "SELECT value, metadata FROM pairs WHERE key = ?",
            request.key,
          )
          .toArray()[0];
        if (row === undefined) return { ok: true, value: { value: null, metadata: null } };
        return {
          ok: true,
          value: {
            value: toBase64(new Uint8Array(row.value)),
            metadata: row.metadata === null ? null : JSON.parse(row.metadata),
          },
        };
      }
      case "put": {
        let expiration: number | null = null;
        if (request.expirationTtl !== undefined) {
          if (!(request.expirationTtl >= MIN_TTL_S)) {
            return {
              ok: false,
              error: `KV PUT failed: 400 Invalid expiration_ttl of ${request.expirationTtl}. Expiration TTL must be at least ${MIN_TTL_S}.`,
            };
          }
          expiration = now + Math.floor(request.expirationTtl);
        } else if (request.expiration !== undefined) {
          if (!(request.expiration >= now + MIN_TTL_S)) {
            return {
              ok: false,
              error: `KV PUT failed: 400 Invalid expiration of ${request.expiration}. Expiration times must be at least ${MIN_TTL_S} seconds in the future.`,
            };
          }
          expiration = Math.floor(request.expiration);
        }
        const metadata = request.metadata === undefined ? null : JSON.stringify(request.metadata);
        if (metadata !== null && new TextEncoder().encode(metadata).byteLength > MAX_METADATA_BYTES) {
          return { ok: false, error: `KV PUT failed: 413 Metadata length exceeds limit of ${MAX_METADATA_BYTES}` };
        }
        const value = Uint8Array.from(atob(request.value), (c) => c.charCodeAt(0));
        sql.exec(
          "INSERT INTO pairs (key, value, metadata, expiration) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration",
          request.key,
          value.buffer,
          metadata,
          expiration,
        );
        return { ok: true, done: true };
      }
      case "delete":
        sql.exec("DELETE FROM pairs WHERE key = ?", request.key);
        return { ok: true, done: true };
      case "list": {
        const limit = request.limit ?? DEFAULT_LIST_LIMIT;
        const prefix = request.prefix ?? "";
        const after = request.cursor === undefined ? "" : atob(request.cursor);
        const rows = sql
          .exec<{ key: string; metadata: string | null; expiration: number | null }>(
            "SELECT key, metadata, expiration FROM pairs WHERE key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
            after,
            prefix.length,
            prefix,
            limit + 1,
          )
          .toArray();
        const page = rows.slice(0, limit);
        const keys = page.map((row): KVListKey => ({
          name: row.key,
          ...(row.expiration === null ? {} : { expiration: row.expiration }),
          ...(row.metadata === null ? {} : { metadata: JSON.parse(row.metadata) }),
        }));
        const complete = rows.length <= limit;
        const last = page.at(-1);
        return {
          ok: true,
          list: {
            keys,
            list_complete: complete,
            ...(complete || last === undefined ? {} : { cursor: btoa(last.key) }),
          },
        };
      }
      default:
        return assertNever(request);
    }
  }
}
