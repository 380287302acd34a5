import { z } from "zod";
import { IncrementSchema } from "./counter.schema.ts";
import { DeployKindSchema, ProjectIdSchema } from "./deploy.schema.ts";
import { RuntimeEventSchema } from "./runtime-event.schema.ts";

/**
 * Queue messages are versioned, tagged envelopes. Every producer builds them with `envelope()`
 * and parses them before `send`; every consumer `safeParse`s them on receipt. A new shape gets a
 * new `type` (or a new `v`), never a silent change to an existing one, because messages of the
 * old shape may still sit in a queue or a dead-letter archive.
 */
const base = {
  v: z.literal(1),
  /** Producer-chosen id of the envelope itself (not of its events). */
  id: z.string().min(1).max(128),
  /** Epoch ms at which the producer built the envelope. */
  created_at: z.number().int().nonnegative(),
};

export const TelemetryEventsEnvelopeSchema = z.strictObject({
  ...base,
  type: z.literal("telemetry.events"),
  events: z.array(RuntimeEventSchema).min(1),
});

export const CounterIncrementsEnvelopeSchema = z.strictObject({
  ...base,
  type: z.literal("counters.increments"),
  increments: z.array(IncrementSchema).min(1),
});

/** A deploy, rollback or down to run; the manifest itself is in DeployArtifacts (it can be 25 MiB). */
export const DeployRequestedEnvelopeSchema = z.strictObject({
  ...base,
  type: z.literal("deploys.requested"),
  deploy_id: z.string().min(1).max(128),
  project_id: ProjectIdSchema,
  kind: DeployKindSchema,
  /** Rollback: the deploy whose manifest to restore. */
  source_deploy_id: z.string().min(1).max(128).nullable().default(null),
});

/** A message its consumer could never process, forwarded to `<queue>-dlq` with the reason. */
export const DeadLetterEnvelopeSchema = z.strictObject({
  ...base,
  type: z.literal("dead_letter"),
  source_queue: z.string().min(1),
  message_id: z.string().min(1),
  reason: z.string(),
  attempts: z.number().int().nonnegative(),
  first_failure_at: z.number().int().nonnegative(),
  body: z.unknown(),
});

export const EnvelopeSchema = z.discriminatedUnion("type", [
  TelemetryEventsEnvelopeSchema,
  CounterIncrementsEnvelopeSchema,
  DeployRequestedEnvelopeSchema,
  DeadLetterEnvelopeSchema,
]);
export type Envelope = z.infer<typeof EnvelopeSchema>;
export type EnvelopeType = Envelope["type"];
export type EnvelopeOf<T extends EnvelopeType> = Extract<Envelope, { type: T }>;

/** Payload fields of an envelope type: everything but the common header. */
export type EnvelopePayload<T extends EnvelopeType> = Omit<EnvelopeOf<T>, "v" | "id" | "created_at" | "type">;

/**
 * The envelope factory for a batch of items the producer has just parsed with the very item
 * schema the envelope holds (`RuntimeEventSchema` via `EventsRequestSchema`, `IncrementSchema`
 * via `CountersRequestSchema`): it builds the header and parses nothing, because parsing every
 * item a second time per request is the same check twice on the ingest path. The guarantee of
 * `envelope()` still holds (producers/ingest-envelopes.test.ts checks the result against
 * `EnvelopeSchema`, as the consumer parses it).
 */
export function envelopeOfParsed<T extends "telemetry.events" | "counters.increments">(
  type: T,
  payload: EnvelopePayload<T>,
  id: string = crypto.randomUUID(),
): EnvelopeOf<T> {
  // The payload's items were parsed by their own schema; `type` is the member's literal.
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion
  return { v: 1, id, created_at: Date.now(), type, ...payload } as EnvelopeOf<T>;
}

/**
 * The one envelope factory. Parses what it builds, so a producer can never enqueue a message its
 * consumer would reject.
 */
export function envelope<T extends EnvelopeType>(
  type: T,
  payload: EnvelopePayload<T>,
  id: string = crypto.randomUUID(),
): EnvelopeOf<T> {
  // The union's parse returns the union; `type` fixes which member it is, so the narrowing is sound.
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion
  return EnvelopeSchema.parse({ v: 1, id, created_at: Date.now(), type, ...payload }) as EnvelopeOf<T>;
}
