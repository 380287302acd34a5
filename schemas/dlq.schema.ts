import { z } from "zod";
import { QUEUE_NAMES, SOURCE_QUEUES, sourceQueueOf } from "../lib/queues.ts";

/**
 * The on-call API over the dead-letter archive (../shared/CONTRACT.md "On-call"): list, show,
 * delete, purge, redrive, and the raw queue send.
 */

/** The contract's queues (lib/queues.ts); each has a dead-letter queue `<queue>-dlq`. */
export const SourceQueueSchema = z.enum(SOURCE_QUEUES);

/** Every queue the raw send may put a message on: the contract's queues and their dead-letter queues. */
export const QueueNameSchema = z.enum(QUEUE_NAMES);

/** An instant: epoch milliseconds (number or digits, as in a query string) or an ISO 8601 date-time. */
export const InstantSchema = z
  .union([z.number().int().nonnegative(), z.string().min(1).max(64)])
  .transform((value, ctx) => {
    if (typeof value === "number") return value;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (!Number.isSafeInteger(ms) || ms < 0) {
      ctx.addIssue({ code: "custom", message: "expected epoch milliseconds or an ISO 8601 date-time" });
      return z.NEVER;
    }
    return ms;
  })
  .describe("epoch milliseconds, or an ISO 8601 date-time");

const ArchiveIdSchema = z.string().min(1).max(128);

/**
 * Which archived messages an operation applies to. Every field narrows; `since`/`until` bound the
 * last failure time (`since` inclusive, `until` exclusive). `queue` accepts a queue or its `-dlq`.
 */
export const DlqFilterSchema = z.strictObject({
  queue: z
    .string()
    .min(1)
    .max(128)
    .transform(sourceQueueOf)
    .optional()
    .describe("source queue, e.g. shipyard-telemetry (its -dlq name works too)"),
  type: z.string().min(1).max(128).optional().describe("envelope type, e.g. telemetry.events"),
  project_id: z.string().min(1).max(128).optional(),
  // Room for a whole reason (consumers cut them at 4,000 characters): the console filters by one.
  reason: z.string().min(1).max(4_096).optional().describe("text the last failure reason contains (case-sensitive)"),
  since: InstantSchema.optional().describe("last failure at or after (epoch ms or ISO 8601)"),
  until: InstantSchema.optional().describe("last failure before (epoch ms or ISO 8601)"),
});
export type DlqFilterInput = z.infer<typeof DlqFilterSchema>;

/** `GET /v1/admin/dlq` query string. */
export const DlqListQuerySchema = DlqFilterSchema.extend({
  limit: z.coerce.number().int().min(1).max(100).default(50).describe("page size, 1..100 (default 50)"),
  cursor: z.string().min(1).max(512).optional().describe("next_cursor of the previous page (opaque)"),
});

export const DlqIdParamsSchema = z.object({ id: ArchiveIdSchema });

/** One archived message. */
export const DeadLetterSchema = z.object({
  id: z.string().describe("archive id; kept when a redriven message is archived again"),
  source_queue: z.string(),
  message_id: z.string().describe("queue message id of the latest dead-lettering"),
  message_key: z.string().describe("hex SHA-256 of the body's JSON: the message's identity across redrives"),
  envelope_type: z.string().nullable(),
  project_id: z.string().nullable(),
  attempts: z.number().int().describe("delivery attempts, added up over redrives"),
  last_error: z.string(),
  first_failure_at: z.number().int(),
  last_failure_at: z.number().int(),
  archived_at: z.number().int(),
  body: z.json(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

export const DlqListSchema = z.object({
  items: z.array(DeadLetterSchema),
  next_cursor: z.string().nullable().describe("pass as cursor for the next page; null on the last page"),
});

/** `GET /v1/admin/dlq/stats`: how many archived messages match, per source queue and per reason. */
export const DlqStatsSchema = z.object({
  total: z.number().int(),
  by_queue: z.array(z.object({ queue: z.string(), count: z.number().int() })),
  by_reason: z
    .array(z.object({ reason: z.string(), count: z.number().int() }))
    .describe("the most frequent last failure reasons, most frequent first (at most 50)"),
});

export const DlqDeletedSchema = z.object({ id: z.string(), deleted: z.literal(true) });

const IdsSchema = z.array(ArchiveIdSchema).min(1).max(1000).describe("archive ids (combined with filter by AND)");

/** `POST /v1/admin/dlq/purge`. Without `dry_run`, a purge names a filter, ids or `all: true`. */
export const DlqPurgeRequestSchema = z.strictObject({
  filter: DlqFilterSchema.optional(),
  ids: IdsSchema.optional(),
  all: z.literal(true).optional().describe("purge the whole archive (required when there is no filter and no ids)"),
  dry_run: z.boolean().default(false).describe("count only"),
});

export const DlqPurgeSchema = z.object({
  dry_run: z.boolean(),
  matched: z.number().int().describe("archived messages matching (dry_run) or deleted"),
  purged: z.number().int(),
  more: z.boolean().describe("a purge deletes at most 200,000 per call: call again while true"),
});

/** Fastest a redrive may move messages; Amazon SQS caps its redrive velocity at the same 500/s. */
export const MAX_REDRIVE_PER_SECOND = 500;
export const DEFAULT_REDRIVE_PER_SECOND = 50;

/** `POST /v1/admin/dlq/redrive`. */
export const RedriveRequestSchema = z.strictObject({
  filter: DlqFilterSchema.optional(),
  ids: IdsSchema.optional(),
  max_per_second: z
    .number()
    .int()
    .min(1)
    .max(MAX_REDRIVE_PER_SECOND)
    .default(DEFAULT_REDRIVE_PER_SECOND)
    .describe("messages moved per second at most"),
  dry_run: z.boolean().default(false).describe("count what would move; move nothing"),
  target_queue: SourceQueueSchema.optional().describe("send here instead of each message's source queue"),
});

export const RedriveAcceptedSchema = z.object({
  task_id: z.string(),
  status_url: z.string(),
  status: z.string(),
  total: z.number().int(),
});

export const RedriveTaskParamsSchema = z.object({ task_id: z.uuid() });

export const REDRIVE_STATUSES = ["running", "completed", "cancelling", "cancelled", "failed"] as const;
export type RedriveStatusName = (typeof REDRIVE_STATUSES)[number];

export const RedriveStatusSchema = z.object({
  task_id: z.string(),
  status: z.enum(REDRIVE_STATUSES),
  dry_run: z.boolean(),
  total: z.number().int().describe("archived messages the task set out to move (fixed at start)"),
  moved: z.number().int().describe("sent back to a queue (the send resolved)"),
  skipped: z.number().int().describe("gone from the archive before their turn (deleted, purged)"),
  failed: z.number().int().describe("could not be moved (no such queue, unreadable body)"),
  pending: z.number().int(),
  truncated: z.boolean().describe("more messages matched than one task takes; run another after this one"),
  max_per_second: z.number().int(),
  target_queue: z.string().nullable(),
  source_queues: z.array(z.string()).describe("source queues this task holds the redrive lock of"),
  created_at: z.number().int(),
  updated_at: z.number().int(),
  finished_at: z.number().int().nullable(),
  error: z.string().nullable(),
  round_count: z.number().int(),
  rounds: z
    .array(
      z.object({
        round: z.number().int(),
        started_at: z.number().int(),
        finished_at: z.number().int(),
        sent: z.number().int(),
        next_at: z.number().int().nullable().describe("when the next round was scheduled"),
      }),
    )
    .describe("the latest rounds (at most 20), oldest first"),
});
export type RedriveStatus = z.infer<typeof RedriveStatusSchema>;

/** Deepest nesting a raw message may have: far beyond any envelope, far within any JSON encoder's stack. */
export const MAX_MESSAGE_DEPTH = 100;

/**
 * Whether `value` nests at most `limit` arrays/objects deep. Iterative on purpose: a recursive walk
 * (or `z.json()`) overflows the stack on the deeply nested bodies a client can send in 1 MiB.
 */
export function nestsWithin(value: unknown, limit: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (typeof next.value !== "object" || next.value === null) continue;
    if (next.depth >= limit) return false;
    for (const child of Object.values(next.value)) stack.push({ value: child, depth: next.depth + 1 });
  }
  return true;
}

/** `POST /v1/admin/queues/:queue/send`: one raw, unvalidated message (the on-call repair tool). */
export const QueueSendParamsSchema = z.object({ queue: z.string().min(1).max(128) });
export const QueueSendRequestSchema = z.strictObject({
  body: z
    .custom<unknown>((value) => value !== undefined && nestsWithin(value, MAX_MESSAGE_DEPTH), {
      message: `any JSON value, nested at most ${MAX_MESSAGE_DEPTH} levels deep`,
    })
    .describe("any JSON; sent as it is"),
  delay_seconds: z.number().int().min(0).max(43_200).optional().describe("delivery delay, at most 12 h"),
});
export const QueueSendAcceptedSchema = z.object({
  queue: QueueNameSchema,
  bytes: z.number().int(),
  delay_seconds: z.number().int(),
});
