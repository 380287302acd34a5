/**
 * The wire format between a tenant's local R2 shim (platform/local/r2-shim.ts, inside the tenant
 * isolate) and the `TenantR2Binding` loopback entrypoint (platform/r2-binding.ts), which hands each
 * call to one real (Miniflare) R2 binding under the bucket's key prefix. A `fetch()` per call: the
 * request in the `x-shipyard-r2` header as JSON, a put's value as the body; the answer as JSON,
 * except a get with a body, whose object travels in the answer's `x-shipyard-r2` header and whose
 * bytes are the answer's body (streamed, never base64).
 */
import { z } from "zod";

export const R2_HEADER = "x-shipyard-r2";

/** R2's key limit (1024 bytes): the prefix is added on the binding's side. */
const KeySchema = z.string().max(1024);

/** `Date`s cross as epoch ms. */
const ConditionalSchema = z.union([
  z.strictObject({
    etagMatches: z.string().optional(),
    etagDoesNotMatch: z.string().optional(),
    uploadedBefore: z.number().optional(),
    uploadedAfter: z.number().optional(),
    secondsGranularity: z.boolean().optional(),
  }),
  z.strictObject({ headers: z.record(z.string(), z.string()) }),
]);

const RangeSchema = z.union([
  z.strictObject({ offset: z.number().int().min(0), length: z.number().int().min(0).optional() }),
  z.strictObject({ offset: z.number().int().min(0).optional(), length: z.number().int().min(0) }),
  z.strictObject({ suffix: z.number().int().min(0) }),
  z.strictObject({ headers: z.record(z.string(), z.string()) }),
]);

export const HttpMetadataSchema = z.union([
  z.strictObject({
    contentType: z.string().optional(),
    contentLanguage: z.string().optional(),
    contentDisposition: z.string().optional(),
    contentEncoding: z.string().optional(),
    cacheControl: z.string().optional(),
    cacheExpiry: z.number().optional(),
  }),
  z.strictObject({ headers: z.record(z.string(), z.string()) }),
]);

const ChecksumSchema = z.string().regex(/^[0-9a-f]*$/i, "a hex digest");

export const R2RequestSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("head"), key: KeySchema }),
  z.strictObject({
    op: z.literal("get"),
    key: KeySchema,
    onlyIf: ConditionalSchema.optional(),
    range: RangeSchema.optional(),
  }),
  z.strictObject({
    op: z.literal("put"),
    key: KeySchema,
    httpMetadata: HttpMetadataSchema.optional(),
    customMetadata: z.record(z.string(), z.string()).optional(),
    onlyIf: ConditionalSchema.optional(),
    md5: ChecksumSchema.optional(),
    sha1: ChecksumSchema.optional(),
    sha256: ChecksumSchema.optional(),
    sha384: ChecksumSchema.optional(),
    sha512: ChecksumSchema.optional(),
    storageClass: z.string().max(64).optional(),
  }),
  z.strictObject({ op: z.literal("delete"), keys: z.array(KeySchema).max(1000) }),
  z.strictObject({
    op: z.literal("list"),
    prefix: z.string().max(1024).optional(),
    cursor: z.string().max(4096).optional(),
    delimiter: z.string().max(1024).optional(),
    startAfter: z.string().max(1024).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    include: z
      .array(z.enum(["httpMetadata", "customMetadata"]))
      .max(2)
      .optional(),
  }),
]);
export type R2Request = z.infer<typeof R2RequestSchema>;

/** An R2Object as the shim rebuilds it: dates as epoch ms, checksums as hex. */
export interface R2WireObject {
  key: string;
  version: string;
  size: number;
  etag: string;
  httpEtag: string;
  uploaded: number;
  httpMetadata: Record<string, string | number>;
  customMetadata: Record<string, string>;
  checksums: Record<string, string>;
  storageClass: string;
  range?: unknown;
}

export type R2Response =
  | { ok: true; object: R2WireObject | null; body?: boolean }
  | {
      ok: true;
      list: { objects: R2WireObject[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] };
    }
  | { ok: true; done: true }
  | { ok: false; error: string };
