/**
 * Durable Object usage from the runtime's own trace items (`TraceItem`, what a Tail Worker's
 * `tail(items)` receives). One mapping for both platforms: the local `UsageTail`
 * (platform/local/usage-tail.ts, hibernatable WebSocket events only: the host object meters the
 * rest) and Shipyard's production `tail` handler (platform/tail-usage.ts, every Durable Object
 * invocation of every script in the dispatch namespace).
 *
 * The fields read here are the ones workerd sets in `TraceItem`'s constructor
 * (cloudflare/workerd src/workerd/api/trace.c++ `TraceItem::TraceItem`, trace.h for the event
 * classes): `executionModel` is the capnp enum's name (`stateless` | `durableObject` | `workflow`,
 * io/worker-interface.capnp), `outcome` likewise (`ok`, `exception`, `exceededCpu`, … io/outcome.capnp),
 * `entrypoint` the class name of a Durable Object invocation, `wallTime`/`cpuTime` whole
 * milliseconds, `eventTimestamp` epoch ms or null. None of them is written by tenant code: the
 * runtime builds the item outside the tenant's isolate after the invocation ends.
 */

/** What a trace item says about one Durable Object invocation. */
export interface TracedInvocation {
  /** The Durable Object class (`entrypoint`). */
  className: string;
  /** `fetch`, `alarm`, `rpc:<method>`, `webSocketMessage`, `webSocketClose` or `webSocketError`. */
  handler: string;
  outcome: "ok" | "error";
  wallMs: number;
  cpuMs: number;
}

/** `webSocketEventType` of a hibernatable WebSocket event (trace.h `Message`/`Close`/`Error`) → handler. */
const WEBSOCKET_HANDLERS: Readonly<Record<string, string>> = {
  message: "webSocketMessage",
  close: "webSocketClose",
  error: "webSocketError",
};

/** The handler an invocation's event ran, or null for events Durable Object metering does not count. */
export function tracedHandler(event: TraceItem["event"]): string | null {
  if (event === null || typeof event !== "object") return null;
  // The event classes share no tag; each is known by its own property (trace.h JSG_RESOURCE_TYPEs).
  if ("getWebSocketEvent" in event) {
    const type: unknown = Reflect.get(event.getWebSocketEvent, "webSocketEventType");
    return (typeof type === "string" ? WEBSOCKET_HANDLERS[type] : undefined) ?? null;
  }
  if ("rpcMethod" in event) return `rpc:${event.rpcMethod}`;
  if ("request" in event) return "fetch";
  // AlarmEventInfo's scheduledTime is a Date; ScheduledEventInfo (cron) has a number and a `cron`.
  if ("scheduledTime" in event && !("cron" in event)) return "alarm";
  return null;
}

/**
 * The invocation a trace item records, whatever its execution model (callers that meter only
 * Durable Objects check `executionModel` themselves), or null when it names no class or its event
 * is not one Durable Object metering counts.
 */
export function tracedInvocation(item: TraceItem): TracedInvocation | null {
  const handler = tracedHandler(item.event);
  if (handler === null || typeof item.entrypoint !== "string" || item.entrypoint === "") return null;
  return {
    className: item.entrypoint,
    handler,
    outcome: item.outcome === "ok" ? "ok" : "error",
    wallMs: wholeMs(item.wallTime),
    cpuMs: wholeMs(item.cpuTime),
  };
}

/** A duration as counted: a finite number of whole ms, never negative. */
function wholeMs(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? Math.max(0, Math.round(value)) : 0;
}
