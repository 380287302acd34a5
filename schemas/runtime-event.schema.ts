import { z } from "zod";
import { utf8Length } from "../lib/utf8.ts";
import { StoredTextSchema } from "./text.schema.ts";

/** Largest `data` object accepted per event, measured as UTF-8 JSON. */
export const MAX_EVENT_DATA_BYTES = 16 * 1024;
/** Events per `POST /v1/events` request. */
export const MAX_EVENTS_PER_REQUEST = 1000;

/** Byte length of a value serialised as JSON (what D1 and the queue will carry). */
export function jsonBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value));
}

/**
 * `data` is stored as sent. zod copies a record into a fresh object and silently skips an own
 * `__proto__` key (assigning it would replace the copy's prototype), so such data would be stored
 * without that key: it is refused instead of changed.
 */
const EventDataSchema = z.preprocess(
  (data, ctx) => {
    if (typeof data === "object" && data !== null && Object.hasOwn(data, "__proto__")) {
      ctx.addIssue({ code: "custom", message: "data may not have a __proto__ key", input: data });
    }
    return data;
  },
  z.record(z.string(), z.unknown()).refine((data) => jsonBytes(data) <= MAX_EVENT_DATA_BYTES, {
    message: `data must be at most ${MAX_EVENT_DATA_BYTES} bytes of JSON`,
  }),
);

export const RuntimeEventSchema = z.strictObject({
  id: StoredTextSchema.min(1).max(128),
  project_id: StoredTextSchema.min(1).max(64),
  type: StoredTextSchema.min(1).max(64),
  ts: z.number().int().nonnegative().describe("epoch milliseconds"),
  data: EventDataSchema,
});
export type RuntimeEvent = z.infer<typeof RuntimeEventSchema>;

export const EventsRequestSchema = z.strictObject({
  events: z.array(RuntimeEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST),
});
export type EventsRequest = z.infer<typeof EventsRequestSchema>;

export const AcceptedResponseSchema = z.object({ accepted: z.number().int().nonnegative() });
