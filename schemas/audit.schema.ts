import { z } from "zod";

/**
 * The audit trail over HTTP: `GET /v1/admin/audit?from=&to=&type=&project_id=&format=&limit=&cursor=`
 * and the entries it answers with (JSON) or exports (CSV, same columns).
 */

/** `deploy.completed`: lowercase dotted words; `deploy.*` in a filter means every `deploy.` type. */
const TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const TYPE_FILTER_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$/;

/** A time in a query string: epoch ms, an ISO 8601 date-time with offset, or a UTC date. */
export const TimeParamSchema = z
  .union([
    z
      .string()
      .regex(/^\d{1,15}$/, "epoch ms")
      .transform(Number),
    z.iso.datetime({ offset: true }).transform((text) => Date.parse(text)),
    z.iso.date().transform((text) => Date.parse(`${text}T00:00:00Z`)),
  ])
  .describe("epoch ms, ISO 8601 date-time (e.g. 2026-11-01T12:00:00Z) or UTC date (2026-11-01)");

/** `type=deploy.completed,rollback.*`: exact types and prefixes. */
export const TypeFilterSchema = z
  .string()
  .max(1024)
  .transform((text) =>
    text
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  )
  .pipe(z.array(z.string().max(64).regex(TYPE_FILTER_PATTERN, "a type such as deploy.completed, or deploy.*")).max(32))
  .transform((parts) => ({
    types: parts.filter((part) => !part.endsWith(".*")),
    // `deploy.*` matches `deploy.` + anything: keep the dot so `deployx.y` does not match.
    typePrefixes: parts.filter((part) => part.endsWith(".*")).map((part) => part.slice(0, -1)),
  }));

/** `format=json` (default) or `format=csv`. */
export const AuditFormatSchema = z.enum(["json", "csv"]);
export type AuditFormat = z.infer<typeof AuditFormatSchema>;

/** `GET /v1/admin/audit` query string (unknown parameters are refused: a typo must not widen a query). */
export const AuditQueryParamsSchema = z.strictObject({
  from: TimeParamSchema.optional().describe("inclusive; default 30 days ago (the retention)"),
  to: TimeParamSchema.optional().describe("exclusive; default now"),
  type: TypeFilterSchema.optional().describe("comma-separated types; `deploy.*` matches every deploy. type"),
  project_id: z.string().min(1).max(64).optional(),
  format: AuditFormatSchema.default("json"),
  limit: z.coerce.number().int().min(1).max(10_000).default(1_000).describe("entries per page"),
  cursor: z.string().min(1).max(1_024).optional().describe("next_cursor of the previous page"),
});
export type AuditQueryParams = z.infer<typeof AuditQueryParamsSchema>;

/** One entry in a JSON answer. */
export const AuditEntrySchema = z.object({
  id: z.string().describe("idempotency key: one entry per id"),
  at: z.number().int().describe("epoch ms"),
  time: z.string().describe("`at` as ISO 8601 (UTC)"),
  type: z.string().regex(TYPE_PATTERN),
  actor: z.string().describe("admin:<fingerprint>, webhook or system"),
  project_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntryBody = z.infer<typeof AuditEntrySchema>;

/** A JSON page. */
export const AuditListSchema = z.object({
  entries: z.array(AuditEntrySchema).describe("ordered by (at, id)"),
  next_cursor: z.string().nullable().describe("pass as `cursor` for the next page; null on the last page"),
});

/** CSV export columns, in order. */
export const AUDIT_CSV_COLUMNS = ["id", "time", "at", "type", "actor", "project_id", "details"] as const;
