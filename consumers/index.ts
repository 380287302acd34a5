import { log } from "../lib/log.ts";
import { COUNTERS_QUEUE, consumeCounters } from "./counters.consumer.ts";
import { consumeDeadLetters } from "./dead-letter.consumer.ts";
import { DEPLOYS_QUEUE, consumeDeploys } from "./deploys.consumer.ts";
import { TELEMETRY_QUEUE, consumeTelemetry } from "./telemetry.consumer.ts";

/** Routes a queue batch to its consumer by queue name. (The consumers await all their work, so `ctx` goes unused.) */
export async function queue(batch: MessageBatch, env: Env, _ctx?: ExecutionContext): Promise<void> {
  if (batch.queue === TELEMETRY_QUEUE) return consumeTelemetry(batch, env);
  if (batch.queue === COUNTERS_QUEUE) return consumeCounters(batch, env);
  if (batch.queue === DEPLOYS_QUEUE) return consumeDeploys(batch, env);
  if (batch.queue.endsWith("-dlq")) return consumeDeadLetters(batch, env);
  // A queue bound in wrangler.toml without a consumer here is a deploy mistake: keep the
  // messages (retry) and say so loudly rather than ack them into nothing.
  log.error("queue_without_consumer", { queue: batch.queue, messages: batch.messages.length });
  batch.retryAll({ delaySeconds: 60 });
}
