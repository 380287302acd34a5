import { DurableObject } from "cloudflare:workers";
import { hashToShard } from "../lib/hash.ts";
import { log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import { DEDUPE_STORE_MIGRATIONS, type EntryRow } from "./dedupe-store.migrations.ts";
import { applySchema } from "./sql-schema.ts";

/** Keys are at most this long, values at most this many bytes (well under SQLite's 2 MB row). */
export const MAX_KEY_CHARS = 512;
export const MAX_VALUE_BYTES = 64 * 1024;
/** Entries live at most this long (the alarm sweeps them after). */
export const MAX_TTL_MS = 30 * 86_400_000;
/** Expired rows deleted per alarm run: bounded work per invocation. */
const SWEEP_BATCH = 5_000;

/**
 * Values are strings (callers store JSON and validate it on the way out with their own schema):
 * a string crosses RPC as itself, where `unknown` would be mapped to `never` by the RPC types.
 */
export interface PutIfAbsentValue {
  /** True when this call stored `value`; false when an earlier call's value is returned. */
  inserted: boolean;
  value: string;
  /** When the returned value was stored (epoch ms). */
  createdAt: number;
}
export type DedupeError = { reason: "key_too_long" | "value_too_large" | "bad_ttl"; message: string };

const encoder = new TextEncoder();

/**
 * A key → value store with first-writer-wins semantics and a TTL per key: the building block for
 * "have I seen this id before, and what did I answer then?" (webhook deliveries, idempotency keys).
 *
 * One object serialises all calls for its keys (a Durable Object runs one event at a time and the
 * SQLite calls here are synchronous), so concurrent `putIfAbsent` on one key insert exactly once.
 * Expired entries are invisible at once and deleted by alarm. Limits and sharding: docs/dedupe-store.md.
 */
export class DedupeStore extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, DEDUPE_STORE_MIGRATIONS);
  }

  /**
   * Stores `value` under `key` unless a live entry exists. Returns `{inserted: true}` with the value
   * stored, or `{inserted: false}` with the value stored first (and when).
   */
  async putIfAbsent(key: string, value: string, ttlMs: number): Promise<Result<PutIfAbsentValue, DedupeError>> {
    if (key.length === 0 || key.length > MAX_KEY_CHARS) {
      return err({ reason: "key_too_long", message: `key must be 1..${MAX_KEY_CHARS} characters` });
    }
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
      return err({ reason: "bad_ttl", message: `ttlMs must be in (0, ${MAX_TTL_MS}]` });
    }
    if (encoder.encode(value).byteLength > MAX_VALUE_BYTES) {
      return err({ reason: "value_too_large", message: `value must be at most ${MAX_VALUE_BYTES} bytes` });
    }
    const now = Date.now();
    const existing = this.#live(key, now);
    if (existing) {
      return ok({ inserted: false, value: existing.value, createdAt: existing.created_at });
    }
    // An expired row for the key may still be there (the sweep is lazy): replace it.
    this.#sql.exec(
      `INSERT INTO entries (key, value, created_at, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at, expires_at = excluded.expires_at`,
      key,
      value,
      now,
      now + ttlMs,
    );
    await this.#armSweep(now + ttlMs);
    return ok({ inserted: true, value, createdAt: now });
  }

  /** The live value under `key`, or null. */
  async get(key: string): Promise<{ value: string; createdAt: number; expiresAt: number } | null> {
    const row = this.#live(key, Date.now());
    return row ? { value: row.value, createdAt: row.created_at, expiresAt: row.expires_at } : null;
  }

  /** Deletes `key`; returns whether a live entry was there. */
  async forget(key: string): Promise<boolean> {
    const live = this.#live(key, Date.now()) !== null;
    this.#sql.exec("DELETE FROM entries WHERE key = ?", key);
    return live;
  }

  /** Live entries and the next expiry (on-call and tests). */
  async stats(): Promise<{ entries: number; nextExpiryAt: number | null }> {
    const now = Date.now();
    const row = this.#sql
      .exec<{ n: number; next: number | null }>(
        "SELECT COUNT(*) AS n, MIN(expires_at) AS next FROM entries WHERE expires_at > ?",
        now,
      )
      .one();
    return { entries: row.n, nextExpiryAt: row.next };
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    const deleted = this.#sql.exec(
      "DELETE FROM entries WHERE key IN (SELECT key FROM entries WHERE expires_at <= ? LIMIT ?)",
      now,
      SWEEP_BATCH,
    ).rowsWritten;
    if (deleted > 0)
      log.info("dedupe_entries_expired", { object: this.ctx.id.name ?? this.ctx.id.toString(), deleted });
    const next = this.#sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM entries").one().next;
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, now + (deleted >= SWEEP_BATCH ? 0 : 1_000)));
  }

  #live(key: string, now: number): EntryRow | null {
    return (
      this.#sql
        .exec<EntryRow>(
          "SELECT key, value, created_at, expires_at FROM entries WHERE key = ? AND expires_at > ?",
          key,
          now,
        )
        .toArray()[0] ?? null
    );
  }

  async #armSweep(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}

/** Number of named DedupeStore objects keys are spread over. Changing it forgets entries. */
export const DEDUPE_SHARDS = 16;

/** The DedupeStore object holding `key`: the same key always reaches the same one of DEDUPE_SHARDS. */
export function dedupeStore(env: Pick<Env, "DEDUPE_STORE">, key: string): DurableObjectStub<DedupeStore> {
  return env.DEDUPE_STORE.getByName(`dedupe-${hashToShard(key, DEDUPE_SHARDS)}`);
}
