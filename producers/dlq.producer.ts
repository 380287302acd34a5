import { z } from "zod";
import { type RedriveTaskError, redriveTask } from "../durable/redrive-task.do.ts";
import { audit } from "../lib/audit.d1.ts";
import {
  type ArchivePosition,
  type DeadLetterRow,
  type DlqFilter,
  countDeadLetters,
  deadLetterStats,
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
} from "../lib/dead-letters.d1.ts";
import { assertNever } from "../lib/result.ts";
import {
  type DlqFilterInput,
  DlqFilterSchema,
  DlqIdParamsSchema,
  DlqListQuerySchema,
  DlqPurgeRequestSchema,
  RedriveRequestSchema,
  RedriveTaskParamsSchema,
} from "../schemas/dlq.schema.ts";
import type { Principal } from "./auth.ts";
import { BadRequest, Conflict, type HttpError, NotFound, ServiceUnavailable } from "./errors.ts";
import { pathParams, queryParams, readJson } from "./http.ts";
import { accepted, ok } from "./responses.ts";

/** The filter of a request in the archive's terms. */
function toFilter(input: DlqFilterInput | undefined, ids?: string[]): DlqFilter {
  const filter: DlqFilter = {};
  if (input?.queue !== undefined) filter.queue = input.queue;
  if (input?.type !== undefined) filter.type = input.type;
  if (input?.project_id !== undefined) filter.projectId = input.project_id;
  if (input?.reason !== undefined) filter.reason = input.reason;
  if (input?.since !== undefined) filter.since = input.since;
  if (input?.until !== undefined) filter.until = input.until;
  if (ids !== undefined) filter.ids = ids;
  return filter;
}

const CursorSchema = z.tuple([z.number().int().nonnegative(), z.string().min(1).max(128)]);

/** Opaque to clients: base64url of the last row's position in the list order. */
function encodeCursor(position: ArchivePosition): string {
  return btoa(JSON.stringify([position.archivedAt, position.id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

function decodeCursor(cursor: string): ArchivePosition {
  try {
    const json: unknown = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
    const [archivedAt, id] = CursorSchema.parse(json);
    return { archivedAt, id };
  } catch {
    throw new BadRequest("invalid_cursor", "cursor is not one this API returned");
  }
}

/** An archive row as the API shows it: the body as JSON again (or as text if it never was JSON). */
function view(row: DeadLetterRow) {
  let body: unknown;
  try {
    body = JSON.parse(row.body);
  } catch {
    body = row.body;
  }
  return {
    id: row.id,
    source_queue: row.source_queue,
    message_id: row.message_id,
    message_key: row.message_key,
    envelope_type: row.envelope_type,
    project_id: row.project_id,
    attempts: row.attempts,
    last_error: row.last_error,
    first_failure_at: row.first_failure_at,
    last_failure_at: row.last_failure_at,
    archived_at: row.archived_at,
    body,
  };
}

/** `GET /v1/admin/dlq` (admin): archived messages, newest first, with cursor pagination. */
export async function getDeadLetters(request: Request, env: Env): Promise<Response> {
  const { limit, cursor, ...filter } = queryParams(request, DlqListQuerySchema);
  const page = await listDeadLetters(env.DB, toFilter(filter), limit, cursor ? decodeCursor(cursor) : null);
  return ok({ items: page.rows.map(view), next_cursor: page.next ? encodeCursor(page.next) : null });
}

/**
 * `GET /v1/admin/dlq/stats` (admin): counts of the archived messages matching the list's filters,
 * per source queue and per last failure reason (the console's summary).
 */
export async function getDeadLetterStats(request: Request, env: Env): Promise<Response> {
  const filter = toFilter(queryParams(request, DlqFilterSchema));
  const stats = await deadLetterStats(env.DB, filter);
  return ok({
    total: stats.byQueue.reduce((sum, row) => sum + row.count, 0),
    by_queue: stats.byQueue,
    by_reason: stats.byReason,
  });
}

/** `GET /v1/admin/dlq/:id` (admin): one archived message. */
export async function getDeadLetterById(request: Request, env: Env): Promise<Response> {
  const { id } = pathParams(request, DlqIdParamsSchema);
  const row = await getDeadLetter(env.DB, id);
  if (!row) throw new NotFound(`no dead letter ${id}`);
  return ok(view(row));
}

/** `DELETE /v1/admin/dlq/:id` (admin): drops one archived message for good. */
export async function deleteDeadLetterById(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { id } = pathParams(request, DlqIdParamsSchema);
  const row = await deleteDeadLetter(env.DB, id);
  if (!row) throw new NotFound(`no dead letter ${id}`);
  await audit(env.DB, {
    type: "dlq.deleted",
    actor: principal.id,
    projectId: row.project_id,
    details: { id, source_queue: row.source_queue, envelope_type: row.envelope_type, last_error: row.last_error },
  });
  return ok({ id, deleted: true });
}

/**
 * `POST /v1/admin/dlq/purge` (admin): deletes every archived message matching the filter (and
 * ids); `dry_run` only counts. A purge of the whole archive must say `"all": true`, so that an
 * empty body never empties it by accident.
 */
export async function postPurge(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { body } = await readJson(request, DlqPurgeRequestSchema);
  const filter = toFilter(body.filter, body.ids);
  if (body.dry_run) {
    return ok({ dry_run: true, matched: await countDeadLetters(env.DB, filter), purged: 0, more: false });
  }
  if (Object.keys(filter).length === 0 && body.all !== true) {
    throw new BadRequest("filter_required", 'name a filter or ids, or send "all": true to purge the whole archive');
  }
  const { purged, more } = await purgeDeadLetters(env.DB, filter);
  await audit(env.DB, {
    type: "dlq.purged",
    actor: principal.id,
    projectId: filter.projectId ?? null,
    details: { filter: body.filter ?? {}, ids: body.ids?.length ?? 0, all: body.all === true, purged, more },
  });
  return ok({ dry_run: false, matched: purged, purged, more });
}

/** A RedriveTask's refusal as the contract's error. */
function redriveFailure(error: RedriveTaskError): HttpError {
  switch (error.reason) {
    case "not_found":
      return new NotFound(error.message);
    case "conflict":
      return new Conflict("redrive_running", error.message, { source_queue: error.queue, task_id: error.heldBy });
    case "finished":
      return new Conflict("redrive_finished", error.message);
    case "already_started":
      return new Conflict("redrive_exists", error.message);
    case "invalid":
      return new BadRequest("invalid_body", error.message);
    case "unavailable":
      return new ServiceUnavailable("archive_unavailable", error.message, 5);
    default:
      return assertNever(error);
  }
}

function statusUrl(taskId: string): string {
  return `/v1/admin/dlq/redrive/${taskId}`;
}

/**
 * `POST /v1/admin/dlq/redrive` (admin): starts a redrive task (a RedriveTask object) moving the
 * matching archived messages back to their source queue, or `target_queue`, at `max_per_second`
 * at most. 409 while another task runs on one of the same source queues.
 */
export async function postRedrive(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { body } = await readJson(request, RedriveRequestSchema);
  const taskId = crypto.randomUUID();
  const result = await redriveTask(env, taskId).start({
    taskId,
    filter: toFilter(body.filter, body.ids),
    maxPerSecond: body.max_per_second,
    dryRun: body.dry_run,
    targetQueue: body.target_queue ?? null,
    actor: principal.id,
  });
  if (!result.ok) throw redriveFailure(result.error);
  return accepted({
    task_id: taskId,
    status_url: statusUrl(taskId),
    status: result.value.status,
    total: result.value.total,
  });
}

/** `GET /v1/admin/dlq/redrive/:task_id` (admin): status, counts and the latest rounds. */
export async function getRedrive(request: Request, env: Env): Promise<Response> {
  const { task_id } = pathParams(request, RedriveTaskParamsSchema);
  const result = await redriveTask(env, task_id).status();
  if (!result.ok) throw redriveFailure(result.error);
  return ok(result.value);
}

/** `POST /v1/admin/dlq/redrive/:task_id/cancel` (admin): stops the task; what was moved stays moved. */
export async function postRedriveCancel(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { task_id } = pathParams(request, RedriveTaskParamsSchema);
  const result = await redriveTask(env, task_id).cancel(principal.id);
  if (!result.ok) throw redriveFailure(result.error);
  return ok(result.value);
}
