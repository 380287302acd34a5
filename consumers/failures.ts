import { multiRowInserts } from "../lib/d1.ts";
import { FAILURE_RECORD_TTL_MS, messageKey } from "../lib/dead-letters.d1.ts";
import { describeError, log } from "../lib/log.ts";

/** Longest reason kept with a failure or a dead letter. */
export const MAX_REASON_CHARS = 4_000;

/** `text`, cut to `MAX_REASON_CHARS`. */
export function clipReason(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
}

/** A message to retry, and why it failed this time. */
export interface Failure {
  message: Message;
  reason: string;
  delaySeconds: number;
}

const UPSERT = {
  head: `INSERT INTO message_failures (source_queue, message_key, message_id, attempts, last_error, first_failure_at,
    last_failure_at)`,
  // The latest delivery's count and reason win; the first failure time and what a redrive carried
  // over (prior_attempts, archive_id) stay.
  tail: `ON CONFLICT(source_queue, message_key) DO UPDATE SET
    message_id = excluded.message_id,
    attempts = excluded.attempts,
    last_error = excluded.last_error,
    last_failure_at = excluded.last_failure_at`,
  columns: 7,
} as const;

/**
 * Retries `failures`, first recording why each failed in D1 `message_failures` (one multi-row
 * upsert for the lot, plus pruning records older than any queue keeps a message, in one round
 * trip). When the queue gives up after `max_retries`, the dead-letter consumer archives the message
 * with this reason. Called only when something failed: a batch that acks everything costs nothing.
 * If D1 cannot take the record (it may be what failed), the messages are retried all the same and
 * the archive will say no reason was recorded.
 */
export async function retryWithReasons(
  db: D1Database,
  sourceQueue: string,
  failures: readonly Failure[],
): Promise<void> {
  if (failures.length === 0) return;
  const now = Date.now();
  try {
    const rows = await Promise.all(
      failures.map(async ({ message, reason }) => [
        sourceQueue,
        await messageKey(message.body),
        message.id,
        message.attempts,
        clipReason(reason),
        now,
        now,
      ]),
    );
    await db.batch([
      ...multiRowInserts(db, UPSERT, rows),
      db.prepare("DELETE FROM message_failures WHERE last_failure_at < ?").bind(now - FAILURE_RECORD_TTL_MS),
    ]);
  } catch (error) {
    log.warn("failure_reason_not_recorded", {
      queue: sourceQueue,
      messages: failures.length,
      error: describeError(error),
    });
  }
  for (const { message, delaySeconds } of failures) message.retry({ delaySeconds });
}
