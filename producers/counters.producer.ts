import { counterShard, counterShardOf } from "../durable/counter-shard.do.ts";
import { config } from "../lib/config.ts";
import { readCounter } from "../lib/counters.d1.ts";
import { D1Client } from "../lib/d1.ts";
import { MESSAGE_BUDGET_BYTES, packMessages, sendSized } from "../lib/queue.ts";
import { CounterParamsSchema, CountersRequestSchema, type Increment } from "../schemas/counter.schema.ts";
import { envelopeOfParsed } from "../schemas/envelope.schema.ts";
import { pathParams, readJson } from "./http.ts";
import { accepted, ok } from "./responses.ts";
import { QUEUES } from "../lib/queues.ts";

const ENVELOPE_OVERHEAD_BYTES = 512;

/**
 * Increments packed into envelopes of ≤ ~120 KB (an increment is < 1 KB, so ~1000 fit in one or
 * two). `increments` must have been parsed with `IncrementSchema` (the envelope does not parse them again).
 */
export function packIncrements(increments: readonly Increment[]) {
  return packMessages(increments, MESSAGE_BUDGET_BYTES, ENVELOPE_OVERHEAD_BYTES, (group) =>
    envelopeOfParsed("counters.increments", { increments: group }),
  );
}

/** `POST /v1/counters`: validate, enqueue (awaited), then 202. */
export async function postCounters(request: Request, env: Env): Promise<Response> {
  const { body } = await readJson(request, CountersRequestSchema);
  await sendSized(env.COUNTERS_QUEUE, QUEUES.counters.name, packIncrements(body.increments));
  return accepted({ accepted: body.increments.length });
}

/**
 * `GET /v1/counters/:scope/:key`: the values as D1 has them plus, in `primary` mode, the deltas
 * still held by the owning shard (read-your-writes: a 202'd increment shows once its shard has it).
 */
export async function getCounter(request: Request, env: Env): Promise<Response> {
  const { scope, key } = pathParams(request, CounterParamsSchema);
  const cfg = config(env);
  const values =
    cfg.COUNTER_DO_MODE === "primary"
      ? await counterShard(env, counterShardOf(scope, key, cfg.SHARD_COUNT)).read(scope, key)
      : await readCounter(new D1Client(env.DB), scope, key);
  return ok({ scope, key, values });
}
