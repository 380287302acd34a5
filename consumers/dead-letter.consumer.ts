import { z } from "zod";
import { DeadLetterEnvelopeSchema } from "../schemas/envelope.schema.ts";
import { D1Client } from "../lib/d1.ts";
import { describeError, log } from "../lib/log.ts";

/** `<queue>-dlq` → `<queue>`. */
export function sourceQueueOf(dlqName: string): string {
  return dlqName.endsWith("-dlq") ? dlqName.slice(0, -"-dlq".length) : dlqName;
}

/** The few fields the archive indexes, read leniently from any body. */
const IndexedFieldsSchema = z.looseObject({
  type: z.string().optional(),
  project_id: z.string().optional(),
  events: z.array(z.looseObject({ project_id: z.string().optional() })).optional(),
});

/** Best-effort envelope type and project id of any body, for the archive's filters. */
function describeBody(body: unknown): { type: string | null; projectId: string | null } {
  const parsed = IndexedFieldsSchema.safeParse(body);
  if (!parsed.success) return { type: null, projectId: null };
  const { type, project_id, events } = parsed.data;
  return { type: type ?? null, projectId: project_id ?? events?.[0]?.project_id ?? null };
}

/**
 * Dead-letter consumers: archive every message into D1 `dead_letters`. A message arrives either as
 * a `dead_letter` envelope (a consumer refused it at once, with the reason) or as the original body
 * (the queue gave up after `max_retries`). Archiving is idempotent per (source queue, message id):
 * a message dead-lettered again after a redrive updates its row and adds up its attempts.
 */
export async function consumeDeadLetters(batch: MessageBatch, env: Env): Promise<void> {
  const d1 = new D1Client(env.DB);
  const now = Date.now();
  const statements = batch.messages.map((message) => {
    const wrapped = DeadLetterEnvelopeSchema.safeParse(message.body);
    const letter = wrapped.success
      ? {
          sourceQueue: wrapped.data.source_queue,
          messageId: wrapped.data.message_id,
          attempts: wrapped.data.attempts,
          reason: wrapped.data.reason,
          firstFailureAt: wrapped.data.first_failure_at,
          body: wrapped.data.body,
        }
      : {
          sourceQueue: sourceQueueOf(batch.queue),
          messageId: message.id,
          attempts: message.attempts,
          reason: "delivery failed max_retries times",
          firstFailureAt: now,
          body: message.body,
        };
    const { type, projectId } = describeBody(letter.body);
    return d1
      .prepare(
        `INSERT INTO dead_letters (id, source_queue, message_id, envelope_type, project_id, attempts, last_error,
           first_failure_at, last_failure_at, body, archived_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(source_queue, message_id) DO UPDATE SET
           attempts = dead_letters.attempts + excluded.attempts,
           last_error = excluded.last_error,
           last_failure_at = excluded.last_failure_at,
           body = excluded.body`,
      )
      .bind(
        crypto.randomUUID(),
        letter.sourceQueue,
        letter.messageId,
        type,
        projectId,
        Math.max(1, letter.attempts),
        letter.reason,
        letter.firstFailureAt,
        now,
        JSON.stringify(letter.body ?? null),
        now,
      );
  });
  try {
    await d1.batch(statements);
    batch.ackAll();
    log.info("dead_letters_archived", { queue: batch.queue, count: batch.messages.length });
  } catch (error) {
    log.error("dead_letter_archive_failed", {
      queue: batch.queue,
      count: batch.messages.length,
      error: describeError(error),
    });
    batch.retryAll({ delaySeconds: 30 });
  }
}
