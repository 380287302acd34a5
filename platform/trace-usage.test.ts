/**
 * The trace → invocation mapping (platform/trace-usage.ts) on trace items workerd itself produced:
 * a dynamic Worker's Durable Object class runs as a facet with `tails` naming Shipyard's
 * `UsageTail`, whose `tail(items)` is observed (calling through). The same items check that the
 * production test builder (test/trace-items.ts) has the runtime's field names and types; what
 * local workerd leaves out (`scriptName`, `dispatchNamespace`, `scriptVersion`, a real wall time)
 * only Cloudflare sets.
 */
import { afterEach, describe, it, vi } from "vitest";
import {
  alarmEvent,
  capturedTraceItems,
  fetchEvent,
  rpcEvent,
  traceItem,
  webSocketEvent,
} from "../test/trace-items.ts";
import { tracedHandler, tracedInvocation } from "./trace-usage.ts";

const TENANT = `
import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {
  async fetch(request) {
    return new Response("ok " + new URL(request.url).pathname);
  }
  async increment(by) {
    return by + 1;
  }
}
export default { fetch: () => new Response("default") };
`;

interface CounterStub extends Rpc.DurableObjectBranded {
  increment(by: number): Promise<number>;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs a fetch and an RPC call on a tenant facet and answers the trace items the runtime sent. */
async function realTraceItems(): Promise<TraceItem[]> {
  const items = await capturedTraceItems<CounterStub>(TENANT, "Counter", 2, async (facet) => {
    // A fetch invocation ends (and is traced) once its body has been read.
    await (await facet.fetch("http://do/path")).text();
    await facet.increment(1);
  });
  return [...items];
}

describe("trace items as workerd produces them", () => {
  it("a facet's fetch and RPC call map to fetch and rpc:increment of the class", async ({ expect }) => {
    const items = await realTraceItems();
    expect(items.map((item) => tracedInvocation(item)?.handler ?? "").toSorted((a, b) => a.localeCompare(b))).toEqual([
      "fetch",
      "rpc:increment",
    ]);
    for (const item of items) {
      expect(tracedInvocation(item)).toMatchObject({ className: "Counter", outcome: "ok" });
    }
  });

  it("the test builder has the runtime's field names and types", async ({ expect }) => {
    const real = await realTraceItems();
    const built = traceItem({ scriptName: "x", entrypoint: "Counter", event: rpcEvent("increment") });
    const shape = (item: TraceItem) =>
      Object.fromEntries(
        Object.keys(built)
          // Set by Cloudflare for an uploaded script in a namespace; local workerd leaves them
          // undefined (and `scriptName` null).
          .filter((key) => !["dispatchNamespace", "scriptVersion", "scriptTags", "scriptName"].includes(key))
          .map((key) => {
            const value: unknown = Reflect.get(item, key);
            return [key, value === null ? "null" : Array.isArray(value) ? "array" : typeof value];
          }),
      );
    for (const item of real) {
      expect(shape(item)).toEqual({ ...shape(built), event: "object" });
      expect(item.executionModel).toBe(built.executionModel);
    }
    const rpc = real.find((item) => item.event !== null && "rpcMethod" in item.event);
    // The runtime's event objects are JSG classes (JsRpcEventInfo, FetchEventInfo): compared field by field.
    expect(rpc?.event && { ...rpc.event }).toEqual(rpcEvent("increment"));
    const fetched = real.find((item) => item.event !== null && "request" in item.event);
    expect(Object.keys(fetched?.event ?? {}).toSorted()).toEqual(Object.keys(fetchEvent("http://do/path")).toSorted());
  });

  it("every event kind the builder makes maps as metering counts it; a cron does not", ({ expect }) => {
    expect(tracedHandler(alarmEvent(Date.now()))).toBe("alarm");
    expect(tracedHandler(webSocketEvent("message"))).toBe("webSocketMessage");
    expect(tracedHandler(webSocketEvent("close"))).toBe("webSocketClose");
    expect(tracedHandler(webSocketEvent("error"))).toBe("webSocketError");
    expect(tracedHandler(fetchEvent("http://x/"))).toBe("fetch");
    expect(tracedHandler({ scheduledTime: Date.now(), cron: "* * * * *" })).toBeNull();
    expect(tracedHandler({ queue: "q", batchSize: 1 })).toBeNull();
    expect(tracedHandler(null)).toBeNull();
  });
});
