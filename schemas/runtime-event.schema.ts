import { z } from "zod";
import { jsonBytes } from "../lib/utf8.ts";
import { StoredTextSchema } from "./text.schema.ts";

/** Largest `data` object accepted per event, measured as UTF-8 JSON. */
export const MAX_EVENT_DATA_BYTES = 16 * 1024;
/** Events per `POST /v1/events` request. */
export const MAX_EVENTS_PER_REQUEST = 1000;

/**
 * UTF-8 JSON size of each `data` object already measured. `data` is validated without being
 * copied (below), so the object checked at the edge is the same one checked again in its queue
 * envelope, and its size is computed once, not once per parse.
 */
const measured = new WeakMap<object, number>();

function dataBytes(data: object): number {
  let bytes = measured.get(data);
  if (bytes === undefined) {
    bytes = jsonBytes(data);
    measured.set(data, bytes);
  }
  return bytes;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `data` is stored as sent: a JSON object of at most MAX_EVENT_DATA_BYTES. It is checked in place,
 * not rebuilt key by key (as `z.record` would: that copy was the largest single cost of
 * validation, and it silently skipped an own `__proto__` key, so such data is refused rather than
 * stored changed).
 */
const EventDataSchema = z
  .custom<Record<string, unknown>>()
  .check((ctx) => {
    if (!isJsonObject(ctx.value)) {
      ctx.issues.push({ code: "invalid_type", expected: "object", input: ctx.value, continue: false });
    }
  })
  .refine((data) => !Object.hasOwn(data, "__proto__"), { message: "data may not have a __proto__ key" })
  .refine((data) => dataBytes(data) <= MAX_EVENT_DATA_BYTES, {
    message: `data must be at most ${MAX_EVENT_DATA_BYTES} bytes of JSON`,
  })
  .meta({
    type: "object",
    additionalProperties: {},
    description: `A JSON object, at most ${MAX_EVENT_DATA_BYTES} bytes`,
  });

/**
 * Event types only the platform produces (Durable Object metering, which enforcement acts on):
 * `POST /v1/events` refuses them (400 `reserved_event_type`); they reach the queue from the
 * platform's own code only.
 */
export const PLATFORM_EVENT_TYPES: ReadonlySet<string> = new Set(["do_usage"]);

export const RuntimeEventSchema = z.strictObject({
  id: StoredTextSchema.min(1).max(128),
  project_id: StoredTextSchema.min(1).max(64),
  type: StoredTextSchema.min(1)
    .max(64)
    .describe("event type; do_usage is reserved for the platform's own metering (POST /v1/events refuses it)"),
  ts: z.number().int().nonnegative().describe("epoch milliseconds"),
  data: EventDataSchema,
});
export type RuntimeEvent = z.infer<typeof RuntimeEventSchema>;

export const EventsRequestSchema = z.strictObject({
  events: z.array(RuntimeEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST),
});
export type EventsRequest = z.infer<typeof EventsRequestSchema>;
