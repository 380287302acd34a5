import { z } from "zod";
import { AUDIT_RETENTION_MS, type AuditRecord } from "../durable/audit-log.do.ts";
import { type AuditQueryError, queryAudit } from "../durable/audit-log.outbox.ts";
import { csvRow } from "../lib/csv.ts";
import { assertNever } from "../lib/result.ts";
import { AUDIT_CSV_COLUMNS, type AuditEntryBody, AuditQueryParamsSchema } from "../schemas/audit.schema.ts";
import { BadRequest, type HttpError, ServiceUnavailable } from "./errors.ts";
import { queryParams } from "./http.ts";
import { ok } from "./responses.ts";

/** The keyset cursor, `[at, id]` as base64url JSON: opaque to clients, checked on the way in. */
const CursorSchema = z.tuple([z.number().int().nonnegative(), z.string().min(1).max(256)]);

function encodeCursor(next: { at: number; id: string }): string {
  const bytes = new TextEncoder().encode(JSON.stringify([next.at, next.id]));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
}

function decodeCursor(cursor: string): { at: number; id: string } {
  try {
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    );
    const [at, id] = CursorSchema.parse(JSON.parse(text));
    return { at, id };
  } catch {
    throw new BadRequest("invalid_query", "cursor is not a next_cursor this endpoint gave out");
  }
}

const DetailsSchema = z.record(z.string(), z.unknown());

function toBody(record: AuditRecord): AuditEntryBody {
  let details: Record<string, unknown>;
  try {
    const parsed = DetailsSchema.safeParse(JSON.parse(record.details));
    details = parsed.success ? parsed.data : { raw: record.details };
  } catch {
    details = { raw: record.details };
  }
  return {
    id: record.id,
    at: record.at,
    time: new Date(record.at).toISOString(),
    type: record.type,
    actor: record.actor,
    project_id: record.projectId,
    details,
  };
}

function toCsv(records: readonly AuditRecord[], withHeader: boolean): string {
  const lines = withHeader ? [csvRow(AUDIT_CSV_COLUMNS)] : [];
  for (const record of records) {
    lines.push(
      csvRow([
        record.id,
        new Date(record.at).toISOString(),
        record.at,
        record.type,
        record.actor,
        record.projectId,
        record.details,
      ]),
    );
  }
  return lines.join("");
}

/** `20261101T120000Z`: a timestamp that is safe in a file name on every system. */
function fileStamp(at: number): string {
  return new Date(at)
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replaceAll("-", "")
    .replaceAll(":", "");
}

function queryFailure(error: AuditQueryError): HttpError {
  switch (error.reason) {
    case "invalid_query":
      return new BadRequest("invalid_query", error.message);
    case "unavailable":
      return new ServiceUnavailable("audit_unavailable", `the audit log could not be read: ${error.message}`, 5);
    default:
      return assertNever(error.reason);
  }
}

/**
 * `GET /v1/admin/audit` (admin): the audit trail between `from` (default: 30 days ago, the
 * retention) and `to` (default: now), optionally of some types and one project, oldest first, as
 * JSON (`next_cursor` pages on) or CSV (`text/csv` attachment; the next page's cursor is in
 * `X-Next-Cursor`, and a page after the first has no header row, so pages concatenate).
 */
export async function getAudit(request: Request, env: Env): Promise<Response> {
  const params = queryParams(request, AuditQueryParamsSchema);
  const now = Date.now();
  const to = params.to ?? now + 1;
  const from = params.from ?? now - AUDIT_RETENTION_MS;
  if (from >= to) throw new BadRequest("invalid_query", "from must be before to");
  const result = await queryAudit(env, {
    from,
    to,
    types: params.type?.types ?? [],
    typePrefixes: params.type?.typePrefixes ?? [],
    projectId: params.project_id ?? null,
    after: params.cursor ? decodeCursor(params.cursor) : null,
    limit: params.limit,
  });
  if (!result.ok) throw queryFailure(result.error);
  const next = result.value.next ? encodeCursor(result.value.next) : null;
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  if (next) headers["X-Next-Cursor"] = next;
  if (params.format === "csv") {
    return new Response(toCsv(result.value.entries, params.cursor === undefined), {
      status: 200,
      headers: {
        ...headers,
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": `attachment; filename="shipyard-audit-${fileStamp(from)}-${fileStamp(to)}.csv"`,
      },
    });
  }
  return ok({ entries: result.value.entries.map(toBody), next_cursor: next }, headers);
}
