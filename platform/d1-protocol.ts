/**
 * The wire format between a tenant's local D1 shim (platform/local/d1-shim.ts, running inside the
 * tenant isolate) and the `TenantD1Binding` loopback entrypoint (platform/d1-binding.ts), which
 * hands it to the database's `TenantDatabase` Durable Object. A plain JSON `fetch()` so it works at
 * every compatibility date, like the rest of the local gateway (gateway-protocol.ts says why).
 */
import { z } from "zod";

/** A bound value: D1 binds null, numbers, strings, booleans (stored as 0/1) and bytes (`{blob: base64}` on the wire). */
export const D1ValueSchema = z.union([
  z.null(),
  z.number(),
  z.string(),
  z.boolean(),
  z.strictObject({ blob: z.base64().max(2_800_000) }),
]);

export const D1StatementSchema = z.object({
  sql: z.string().min(1).max(100_000),
  params: z.array(D1ValueSchema).max(100).default([]),
});
export type D1Statement = z.infer<typeof D1StatementSchema>;

/**
 * `query`: statements run in one transaction (one for prepare().all(), several for batch()). No
 * session bookmark travels in: locally there is one copy of each database, so every bookmark is
 * already satisfied. `exec`: raw SQL text.
 */
export const D1RequestSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("query"), statements: z.array(D1StatementSchema).min(1).max(1000) }),
  z.object({ op: z.literal("exec"), sql: z.string().min(1).max(1_000_000) }),
]);
export type D1Request = z.infer<typeof D1RequestSchema>;

/** The `meta` of a D1 result, with the fields the real binding reports. */
export interface D1WireMeta {
  duration: number;
  changes: number;
  last_row_id: number;
  rows_read: number;
  rows_written: number;
  size_after: number;
  changed_db: boolean;
  served_by: string;
  served_by_primary: boolean;
  total_attempts: number;
  timings: { sql_duration_ms: number };
}

export interface D1WireResult {
  columns: string[];
  /** Rows as arrays, in `columns` order (what `raw()` returns; objects are built from them); blobs as byte arrays, as D1 answers them. */
  rows: unknown[][];
  meta: D1WireMeta;
}

/**
 * The answer: results per statement and the database's bookmark after them (what D1 returns in
 * `x-cf-d1-session-commit-token`), or the SQLite error (`D1_ERROR: …`, as the real binding throws).
 */
export type D1Response =
  | { ok: true; results: D1WireResult[]; bookmark: string }
  | { ok: true; exec: { count: number; duration: number } }
  | { ok: false; error: string };
