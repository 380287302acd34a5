import { z } from "zod";

/**
 * How a tenant isolate talks to Shipyard's gateway on the local platform. Every call is a plain
 * `fetch()` on the gateway binding, never RPC: a tenant whose compatibility date is before
 * 2024-04-03 has no RPC on service bindings (`gateway.objectFetch is not a function`), and a
 * WebSocket cannot cross an RPC boundary as a value (`DataCloneError`), while a 101 response with
 * its `webSocket` does cross every `fetch()` hop (tenant → gateway → host object → facet).
 */

/** Which gateway operation a request is; the gateway refuses a request without it. */
export const OP_HEADER = "x-shipyard-gateway-op";
/** On an `object` request: which Durable Object of the tenant it is for (JSON, {@link ObjectAddressSchema}). */
export const TARGET_HEADER = "x-shipyard-object";
/** Origin of the gateway's own JSON operations (never leaves the process). */
export const GATEWAY_ORIGIN = "http://gateway.shipyard.internal";
/** Key under which a facet's `ctx.props` carries its own address and name (set by the host object). */
export const FACET_PROPS_KEY = "__shipyard";

export const GATEWAY_OPS = ["object", "alarm.get", "alarm.set", "alarm.delete", "usage"] as const;
export type GatewayOp = (typeof GATEWAY_OPS)[number];

/** One Durable Object of the tenant: its storage namespace and its id (64 hex). */
export const ObjectAddressSchema = z.object({
  namespace: z.string().min(1).max(200),
  objectKey: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ObjectAddress = z.infer<typeof ObjectAddressSchema>;

/** The name a tenant reached an object by (`idFromName` / `getByName`), if it did. */
export const ObjectNameSchema = z.string().max(2048).nullable().optional();

/** `object`: the tenant's request to one of its Durable Objects, with the class it binds. */
export const ObjectTargetHeaderSchema = ObjectAddressSchema.extend({
  className: z.string().min(1).max(200),
  name: ObjectNameSchema,
});

/** `alarm.*`: an alarm operation of one facet (`time` in epoch ms for `alarm.set`). */
export const AlarmRequestSchema = ObjectAddressSchema.extend({ time: z.number().finite().optional() });

/** A header's JSON value, or null when it is absent or not JSON (the schema then refuses it). */
export function parseJsonHeader(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
