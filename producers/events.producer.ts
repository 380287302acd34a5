import { type EnvelopeOf, envelopeOfParsed } from "../schemas/envelope.schema.ts";
import { EventsRequestSchema, PLATFORM_EVENT_TYPES, type RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { BadRequest } from "./errors.ts";
import { SendCoalescer } from "../lib/send-coalescer.ts";
import { readJson } from "./http.ts";
import { accepted } from "./responses.ts";
import { QUEUES } from "../lib/queues.ts";

/** Room for the envelope's own fields around the events array (ids, type, version, time). */
const ENVELOPE_OVERHEAD_BYTES = 512;

/**
 * This isolate's telemetry sends: concurrent small requests share one message and one `sendBatch`
 * (lib/send-coalescer.ts); each still answers 202 only once the send carrying its events resolved.
 */
export const telemetrySends = new SendCoalescer<RuntimeEvent, EnvelopeOf<"telemetry.events">>({
  queueName: QUEUES.telemetry.name,
  overhead: ENVELOPE_OVERHEAD_BYTES,
  wrap: (group) => envelopeOfParsed("telemetry.events", { events: group }),
});

/**
 * Packs a request's events into telemetry envelopes of at most ~120 KB of JSON each (the hard
 * limit is 128 KB per message). A request body is at most 1 MiB, so one request makes at most
 * ~9 messages, which `sendSized` sends in `sendBatch` calls of ≤ 100 messages and ≤ 256 KB.
 * Each event is ≤ 16 KiB of data plus short fields, so a single event always fits a message.
 * `events` must have been parsed with `RuntimeEventSchema` (the envelope does not parse them again).
 */
export function packEvents(events: readonly RuntimeEvent[]) {
  return telemetrySends.pack(events);
}

/**
 * `POST /v1/events`: validate, enqueue (awaited; maybe in one message with concurrent requests'
 * events), then 202. Event types the platform itself produces (`do_usage`: Durable Object metering, which enforcement acts on) are refused: an
 * ingest-key holder could otherwise charge another project's usage, or make one immune with a
 * negative wall time. The platform's own usage reaches the queue directly (platform/local/tenant-gateway.ts).
 */
export async function postEvents(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const { body } = await readJson(request, EventsRequestSchema);
  // A loop, not flatMap: this runs over every event of every request, and almost always finds none.
  const reserved: number[] = [];
  body.events.forEach((event, index) => {
    if (PLATFORM_EVENT_TYPES.has(event.type)) reserved.push(index);
  });
  if (reserved.length > 0) {
    throw new BadRequest(
      "reserved_event_type",
      `events of type ${[...PLATFORM_EVENT_TYPES].join(", ")} are produced by the platform itself and cannot be posted (events ${reserved.slice(0, 10).join(", ")}${reserved.length > 10 ? ", …" : ""})`,
      { events: reserved.slice(0, 100), types: [...PLATFORM_EVENT_TYPES] },
    );
  }
  await telemetrySends.send(env.TELEMETRY_QUEUE, body.events, (promise) => ctx.waitUntil(promise));
  return accepted({ accepted: body.events.length });
}
