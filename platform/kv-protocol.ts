/**
 * The wire format between a tenant's local KV shim (platform/local/kv-shim.ts, inside the tenant
 * isolate) and the `TenantKVBinding` loopback entrypoint (platform/kv-binding.ts). JSON over
 * `fetch()`, values in base64, so it works at every compatibility date (as the D1 shim's).
 */
import { z } from "zod";

const KeySchema = z.string().min(1).max(512);

export const KVRequestSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("get"), key: KeySchema }),
  z.object({
    op: z.literal("put"),
    key: KeySchema,
    value: z.base64().max(35_000_000),
    expiration: z.number().optional(),
    expirationTtl: z.number().optional(),
    metadata: z.json().optional(),
  }),
  z.object({ op: z.literal("delete"), key: KeySchema }),
  z.object({
    op: z.literal("list"),
    prefix: z.string().max(512).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    cursor: z.string().max(1024).optional(),
  }),
]);
export type KVRequest = z.infer<typeof KVRequestSchema>;

export interface KVListKey {
  name: string;
  expiration?: number;
  metadata?: unknown;
}

export type KVResponse =
  | { ok: true; value: { value: string | null; metadata: unknown } }
  | { ok: true; list: { keys: KVListKey[]; list_complete: boolean; cursor?: string } }
  | { ok: true; done: true }
  | { ok: false; error: string };
