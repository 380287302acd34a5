import { env } from "cloudflare:workers";
import { parse } from "smol-toml";
import { describe, it } from "vitest";
import { z } from "zod";
import wranglerToml from "../wrangler.toml?raw";
import { QUEUES, QUEUE_NAMES, isDeadLetterQueue, queueBinding, sourceQueueOf } from "./queues.ts";

const WranglerQueuesSchema = z.object({
  queues: z.object({
    producers: z.array(z.object({ binding: z.string(), queue: z.string() })),
    consumers: z.array(z.object({ queue: z.string(), dead_letter_queue: z.string().optional() })),
  }),
});

describe("the queue registry", () => {
  it("says what wrangler.toml declares: every producer binding, consumer and dead-letter queue", ({ expect }) => {
    const { queues } = WranglerQueuesSchema.parse(parse(wranglerToml));
    const producers = new Map(queues.producers.map((producer) => [producer.binding, producer.queue]));
    const registered = Object.values(QUEUES).flatMap((spec): [string, string][] => [
      [spec.binding, spec.name],
      [spec.deadLetter.binding, spec.deadLetter.name],
    ]);
    expect(new Map(registered)).toEqual(producers);
    const consumers = new Map(queues.consumers.map((consumer) => [consumer.queue, consumer.dead_letter_queue ?? null]));
    for (const spec of Object.values(QUEUES)) {
      expect(consumers.get(spec.name)).toBe(spec.deadLetter.name);
      expect(consumers.get(spec.deadLetter.name)).toBeNull();
    }
    expect([...consumers.keys()].toSorted()).toEqual([...QUEUE_NAMES].toSorted());
  });

  it("maps names to the Worker's bindings and dead-letter queues to their sources", ({ expect }) => {
    expect(queueBinding(env, "shipyard-counters")).toBe(env.COUNTERS_QUEUE);
    expect(queueBinding(env, "shipyard-deploys-dlq")).toBe(env.DEPLOYS_DLQ);
    expect(sourceQueueOf("shipyard-telemetry-dlq")).toBe("shipyard-telemetry");
    expect(sourceQueueOf("shipyard-telemetry")).toBe("shipyard-telemetry");
    expect(isDeadLetterQueue("shipyard-counters-dlq")).toBe(true);
    expect(isDeadLetterQueue("someone-else-dlq")).toBe(false);
  });
});
