import * as fc from "fast-check";
import { describe, it } from "vitest";
import { arbitraryOf, jsonSchemaOf } from "../test/arbitraries.ts";
import { CountersRequestSchema } from "../schemas/counter.schema.ts";
import { EnvelopeSchema } from "../schemas/envelope.schema.ts";
import { EventsRequestSchema } from "../schemas/runtime-event.schema.ts";
import { packIncrements } from "./counters.producer.ts";
import { packEvents } from "./events.producer.ts";

/**
 * The ingest producers build their envelopes without parsing the items again
 * (`envelopeOfParsed`: the request's schema parsed them a moment before). What they enqueue must
 * still be exactly what the consumer accepts: every body that passes the request schema, packed,
 * passes `EnvelopeSchema`.
 */
describe("ingest envelopes: built from parsed requests, accepted by the consumer's schema", () => {
  for (const [name, schema, pack] of [
    ["POST /v1/events", EventsRequestSchema, (body: unknown) => packEvents(EventsRequestSchema.parse(body).events)],
    [
      "POST /v1/counters",
      CountersRequestSchema,
      (body: unknown) => packIncrements(CountersRequestSchema.parse(body).increments),
    ],
  ] as const) {
    it(`${name}: every packed envelope passes EnvelopeSchema`, ({ expect }) => {
      const json = jsonSchemaOf(schema);
      const valid = arbitraryOf(json, json).filter((body) => schema.safeParse(body).success);
      fc.assert(
        fc.property(valid, (body) => {
          for (const { body: envelope } of pack(body)) {
            const parsed = EnvelopeSchema.safeParse(JSON.parse(JSON.stringify(envelope)));
            expect(parsed.success, parsed.error?.message).toBe(true);
          }
        }),
        { numRuns: 200 },
      );
    });
  }
});
