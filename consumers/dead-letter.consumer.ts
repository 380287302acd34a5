import { z } from "zod";
import { D1Client } from "../lib/d1.ts";
import { bodyJson, messageKey } from "../lib/dead-letters.d1.ts";
import { describeError, log } from "../lib/log.ts";
import { sourceQueueOf } from "../lib/queues.ts";
import { DeadLetterEnvelopeSchema } from "../schemas/envelope.schema.ts";
import { retryDelaySeconds } from "./fan-out.ts";

/** What the archive says when the queue gave up on a message whose consumer recorded no reason. */
export const NO_REASON_RECORDED = "the queue gave up after max_retries deliveries; no failure reason was recorded";

const IndexedFieldSchema = z.string().min(1).max(256);
const FieldsSchema = z.record(z.string(), z.unknown());
const ListSchema = z.array(z.unknown());

/** A string field the archive indexes, or null when it is missing or of another shape. */
function indexedField(value: unknown): string | null {
  const parsed = IndexedFieldSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

function firstProjectId(events: unknown): string | null {
  const list = ListSchema.safeParse(events);
  if (!list.success) return null;
  for (const event of list.data) {
    const fields = FieldsSchema.safeParse(event);
    const projectId = fields.success ? indexedField(fields.data.project_id) : null;
    if (projectId !== null) return projectId;
  }
  return null;
}

/**
 * Best-effort envelope type and project id of any body, for the archive's filters. Each field is
 * read on its own, so a body whose `type` has the wrong shape still yields its project id (and the
 * other way round): poison is exactly the case where some fields are wrong.
 */
export function describeBody(body: unknown): { type: string | null; projectId: string | null } {
  const fields = FieldsSchema.safeParse(body);
  if (!fields.success) return { type: null, projectId: null };
  return {
    type: indexedField(fields.data.type),
    projectId: indexedField(fields.data.project_id) ?? firstProjectId(fields.data.events),
  };
}

/** One message to archive, with what its delivery says; the failure record may add to it. */
interface Letter {
  message: Message;
  sourceQueue: string;
  key: string;
  messageId: string;
  attempts: number;
  /** The consumer's reason (poison); null: the reason recorded before its retries. */
  reason: string | null;
  firstFailureAt: number;
  body: unknown;
}

async function toLetter(message: Message, dlqName: string, now: number): Promise<Letter> {
  const wrapped = DeadLetterEnvelopeSchema.safeParse(message.body);
  if (wrapped.success) {
    // A consumer refused it at once and said why.
    return {
      message,
      sourceQueue: wrapped.data.source_queue,
      key: await messageKey(wrapped.data.body),
      messageId: wrapped.data.message_id,
      attempts: Math.max(1, wrapped.data.attempts),
      reason: wrapped.data.reason,
      firstFailureAt: wrapped.data.first_failure_at,
      body: wrapped.data.body,
    };
  }
  // The queue gave up after max_retries: the raw body; the reason is in message_failures.
  return {
    message,
    sourceQueue: sourceQueueOf(dlqName),
    key: await messageKey(message.body),
    messageId: message.id,
    attempts: Math.max(1, message.attempts),
    reason: null,
    firstFailureAt: now,
    body: message.body,
  };
}

/**
 * Archives one letter, merging in its failure record (attempts, reason, first failure, and the
 * archive id it had before a redrive). On a row already there (same body, same source queue) the
 * attempts add up, unless it is the same queue message delivered again.
 */
function archiveStatement(d1: D1Client, letter: Letter, now: number): D1PreparedStatement {
  const { type, projectId } = describeBody(letter.body);
  return d1
    .prepare(
      `INSERT INTO dead_letters (id, source_queue, message_key, message_id, envelope_type, project_id, attempts,
         last_error, first_failure_at, last_failure_at, body, archived_at)
       SELECT coalesce(f.archive_id, ?1), ?2, ?3, ?4, ?5, ?6,
         coalesce(f.prior_attempts, 0) + max(coalesce(f.attempts, 0), ?7),
         coalesce(?8, f.last_error, ?9),
         min(coalesce(f.first_failure_at, ?10), ?10),
         ?11, ?12, ?11
       FROM (SELECT 1) LEFT JOIN message_failures f ON f.source_queue = ?2 AND f.message_key = ?3
       WHERE true
       ON CONFLICT(source_queue, message_key) DO UPDATE SET
         attempts = CASE WHEN dead_letters.message_id = excluded.message_id THEN dead_letters.attempts
                         ELSE dead_letters.attempts + excluded.attempts END,
         message_id = excluded.message_id,
         envelope_type = excluded.envelope_type,
         project_id = excluded.project_id,
         last_error = excluded.last_error,
         first_failure_at = min(dead_letters.first_failure_at, excluded.first_failure_at),
         last_failure_at = excluded.last_failure_at,
         body = excluded.body
       ON CONFLICT DO NOTHING`,
    )
    .bind(
      crypto.randomUUID(),
      letter.sourceQueue,
      letter.key,
      letter.messageId,
      type,
      projectId,
      letter.attempts,
      letter.reason,
      NO_REASON_RECORDED,
      letter.firstFailureAt,
      now,
      bodyJson(letter.body),
    );
}

/** Deletes the failure records the letters consumed (one statement per source queue). */
function forgetFailuresStatements(d1: D1Client, letters: readonly Letter[]): D1PreparedStatement[] {
  const byQueue = Map.groupBy(letters, (letter) => letter.sourceQueue);
  return [...byQueue].map(([queue, group]) =>
    d1
      .prepare(
        "DELETE FROM message_failures WHERE source_queue = ? AND message_key IN (SELECT value FROM json_each(?))",
      )
      .bind(queue, JSON.stringify(group.map((letter) => letter.key))),
  );
}

/**
 * Dead-letter consumers: archive every message into D1 `dead_letters`. A message arrives either as
 * a `dead_letter` envelope (a consumer refused it at once, with the reason) or as the original body
 * (the queue gave up after `max_retries`; its consumer recorded why in `message_failures`).
 * Archiving is one D1 batch (one transaction) for the whole batch; if that fails, each message is
 * tried on its own so that one row D1 refuses never holds back the others. What is not archived is
 * retried with backoff: this is the last copy of the message.
 */
export async function consumeDeadLetters(batch: MessageBatch, env: Env): Promise<void> {
  const d1 = new D1Client(env.DB);
  const now = Date.now();
  const letters = await Promise.all(batch.messages.map((message) => toLetter(message, batch.queue, now)));
  try {
    await d1.batch([
      ...letters.map((letter) => archiveStatement(d1, letter, now)),
      ...forgetFailuresStatements(d1, letters),
    ]);
    batch.ackAll();
    log.info("dead_letters_archived", { queue: batch.queue, count: letters.length });
    return;
  } catch (error) {
    log.warn("dead_letter_batch_archive_failed", {
      queue: batch.queue,
      count: letters.length,
      error: describeError(error),
    });
  }
  await Promise.all(
    letters.map(async (letter) => {
      try {
        await d1.batch([archiveStatement(d1, letter, now), ...forgetFailuresStatements(d1, [letter])]);
        letter.message.ack();
      } catch (error) {
        log.error("dead_letter_archive_failed", {
          queue: batch.queue,
          message_id: letter.message.id,
          attempts: letter.message.attempts,
          error: describeError(error),
        });
        letter.message.retry({ delaySeconds: retryDelaySeconds(letter.message.attempts, true) });
      }
    }),
  );
}
