import { z } from "zod";
import { envelope } from "../schemas/envelope.schema.ts";
import { describeError, log } from "../lib/log.ts";
import { clipReason } from "./failures.ts";

function describeReason(reason: z.ZodError | string): string {
  return clipReason(typeof reason === "string" ? reason : `envelope failed its schema: ${z.prettifyError(reason)}`);
}

/**
 * Sends a message that can never succeed to its dead-letter queue at once, with the reason, then
 * acks it. If the dead-letter queue itself refuses, the message is retried instead: it must never
 * be acked before it is safe somewhere.
 */
export async function deadLetter(
  dlq: Queue,
  sourceQueue: string,
  message: Message,
  reason: z.ZodError | string,
): Promise<void> {
  const now = Date.now();
  const text = describeReason(reason);
  try {
    await dlq.send(
      envelope("dead_letter", {
        source_queue: sourceQueue,
        message_id: message.id,
        reason: text,
        attempts: message.attempts,
        first_failure_at: now,
        body: message.body,
      }),
      { contentType: "json" },
    );
    log.warn("message_dead_lettered", {
      queue: sourceQueue,
      message_id: message.id,
      attempts: message.attempts,
      reason: text,
    });
    message.ack();
  } catch (error) {
    log.error("dead_letter_send_failed", { queue: sourceQueue, message_id: message.id, error: describeError(error) });
    message.retry({ delaySeconds: 30 });
  }
}
