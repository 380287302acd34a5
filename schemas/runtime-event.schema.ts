import { z } from "zod";

/** Largest `data` object accepted per event, measured as UTF-8 JSON. */
export const MAX_EVENT_DATA_BYTES = 16 * 1024;
/** Events per `POST /v1/events` request. */
export const MAX_EVENTS_PER_REQUEST = 1000;

const encoder = new TextEncoder();

/** Byte length of a value serialised as JSON (what D1 and the queue will carry). */
export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).byteLength;
}

export const RuntimeEventSchema = z.strictObject({
  id: z.string().min(1).max(128),
  project_id: z.string().min(1).max(64),
  type: z.string().min(1).max(64),
  ts: z.number().int().nonnegative().describe("epoch milliseconds"),
  data: z.record(z.string(), z.unknown()).refine((data) => jsonBytes(data) <= MAX_EVENT_DATA_BYTES, {
    message: `data must be at most ${MAX_EVENT_DATA_BYTES} bytes of JSON`,
  }),
});
export type RuntimeEvent = z.infer<typeof RuntimeEventSchema>;

export const EventsRequestSchema = z.strictObject({
  events: z.array(RuntimeEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST),
});
export type EventsRequest = z.infer<typeof EventsRequestSchema>;

export const AcceptedResponseSchema = z.object({ accepted: z.number().int().nonnegative() });
