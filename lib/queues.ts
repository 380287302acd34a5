import type { EnvelopeType } from "../schemas/envelope.schema.ts";

/**
 * A producer binding of wrangler.toml `[[queues.producers]]`. Spelled out rather than derived from
 * the generated Env so this module also type-checks in Node (scripts, CLI); every `queueBinding(env,
 * …)` call checks each name is a Queue of the real Env.
 */
type QueueBindingName =
  | "TELEMETRY_QUEUE"
  | "TELEMETRY_DLQ"
  | "COUNTERS_QUEUE"
  | "COUNTERS_DLQ"
  | "DEPLOYS_QUEUE"
  | "DEPLOYS_DLQ";

interface QueueSpec {
  /** The queue's name (../shared/CONTRACT.md "Queues"; wrangler.toml). */
  name: string;
  /** The producer binding that sends to it. */
  binding: QueueBindingName;
  /** Its dead-letter queue, `<name>-dlq`, and that queue's producer binding. */
  deadLetter: { name: string; binding: QueueBindingName };
  /** The one envelope type its consumer accepts (schemas/envelope.schema.ts). */
  envelope: EnvelopeType;
}

/**
 * The one registry of Shipyard's queues: every name, binding and dead-letter queue is read from
 * here (wrangler.toml declares the same; `lib/queues.test.ts` checks the two agree).
 */
export const QUEUES = {
  telemetry: {
    name: "shipyard-telemetry",
    binding: "TELEMETRY_QUEUE",
    deadLetter: { name: "shipyard-telemetry-dlq", binding: "TELEMETRY_DLQ" },
    envelope: "telemetry.events",
  },
  counters: {
    name: "shipyard-counters",
    binding: "COUNTERS_QUEUE",
    deadLetter: { name: "shipyard-counters-dlq", binding: "COUNTERS_DLQ" },
    envelope: "counters.increments",
  },
  deploys: {
    name: "shipyard-deploys",
    binding: "DEPLOYS_QUEUE",
    deadLetter: { name: "shipyard-deploys-dlq", binding: "DEPLOYS_DLQ" },
    envelope: "deploys.requested",
  },
} as const satisfies Record<string, QueueSpec>;

type Registry = typeof QUEUES;
export type SourceQueue = Registry[keyof Registry]["name"];
export type DeadLetterQueue = Registry[keyof Registry]["deadLetter"]["name"];
export type QueueName = SourceQueue | DeadLetterQueue;

const SPECS: readonly QueueSpec[] = Object.values(QUEUES);

/** The contract's source queues. */
export const SOURCE_QUEUES = [QUEUES.telemetry.name, QUEUES.counters.name, QUEUES.deploys.name] as const;

/** Every queue: the source queues, then their dead-letter queues. */
export const QUEUE_NAMES = [
  ...SOURCE_QUEUES,
  QUEUES.telemetry.deadLetter.name,
  QUEUES.counters.deadLetter.name,
  QUEUES.deploys.deadLetter.name,
] as const;

/** The producer binding of a queue or dead-letter queue. */
export function queueBinding<Q>(env: Readonly<Record<QueueBindingName, Q>>, name: QueueName): Q {
  for (const spec of SPECS) {
    if (spec.name === name) return env[spec.binding];
    if (spec.deadLetter.name === name) return env[spec.deadLetter.binding];
  }
  // Unreachable for a QueueName; a name from outside is checked against QUEUE_NAMES first.
  throw new Error(`no queue ${name}`);
}

/** Whether `name` is one of the registry's dead-letter queues. */
export function isDeadLetterQueue(name: string): boolean {
  return SPECS.some((spec) => spec.deadLetter.name === name);
}

/** A dead-letter queue's source queue (`<queue>-dlq` → `<queue>`); any other name is returned as it is. */
export function sourceQueueOf(name: string): string {
  return SPECS.find((spec) => spec.deadLetter.name === name)?.name ?? name;
}
