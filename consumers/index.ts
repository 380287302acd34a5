import { log } from "../lib/log.ts";
import { consumeCounters } from "./counters.consumer.ts";
import { consumeDeadLetters } from "./dead-letter.consumer.ts";
import { consumeDeploys } from "./deploys.consumer.ts";
import { consumeTelemetry } from "./telemetry.consumer.ts";
import { QUEUES, isDeadLetterQueue } from "../lib/queues.ts";

/** Routes a queue batch to its consumer by queue name. (The consumers await all their work, so `ctx` goes unused.) */
export async function queue(batch: MessageBatch, env: Env, _ctx?: ExecutionContext): Promise<void> {
  if (batch.queue === QUEUES.telemetry.name) return consumeTelemetry(batch, env);
  if (batch.queue === QUEUES.counters.name) return consumeCounters(batch, env);
  if (batch.queue === QUEUES.deploys.name) return consumeDeploys(batch, env);
  if (isDeadLetterQueue(batch.queue)) return consumeDeadLetters(batch, env);
  // A queue bound in wrangler.toml without a consumer here is a deploy mistake: keep the
  // messages (retry) and say so loudly rather than ack them into nothing.
  log.error("queue_without_consumer", { queue: batch.queue, messages: batch.messages.length });
  batch.retryAll({ delaySeconds: 60 });
}
