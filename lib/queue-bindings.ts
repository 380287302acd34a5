import type { QueueName } from "../schemas/dlq.schema.ts";
import { assertNever } from "./result.ts";

/** The producer binding of a contract queue (wrangler.toml `[[queues.producers]]`). */
export function queueBinding(env: Env, name: QueueName): Queue {
  switch (name) {
    case "shipyard-telemetry":
      return env.TELEMETRY_QUEUE;
    case "shipyard-telemetry-dlq":
      return env.TELEMETRY_DLQ;
    case "shipyard-counters":
      return env.COUNTERS_QUEUE;
    case "shipyard-counters-dlq":
      return env.COUNTERS_DLQ;
    case "shipyard-deploys":
      return env.DEPLOYS_QUEUE;
    case "shipyard-deploys-dlq":
      return env.DEPLOYS_DLQ;
    default:
      return assertNever(name);
  }
}
