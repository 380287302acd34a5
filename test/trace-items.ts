/**
 * Trace items as Cloudflare's runtime hands them to a Tail Worker's `tail(items)`, for tests of
 * Shipyard's production tail handler (platform/tail-usage.ts), which no local run can feed: local
 * workerd reports no `dispatchNamespace` and 0 ms of wall time.
 *
 * Built field for field as workerd builds them (cloudflare/workerd @ 6552d999,
 * src/workerd/api/trace.c++ `TraceItem::TraceItem`; the event classes in src/workerd/api/trace.h):
 *   - every item has `event` (null or one event object), `eventTimestamp` (epoch ms, or null when
 *     the trace has none), `logs`, `exceptions`, `diagnosticsChannelEvents` (arrays),
 *     `scriptName` (string or null), `entrypoint` (the Durable Object class), `scriptVersion`
 *     (`{id, tag?, message?}`), `dispatchNamespace` (set for scripts in a namespace), `scriptTags`,
 *     `durableObjectId` (the object's hex id), `outcome` and `executionModel` (capnp enum names:
 *     io/outcome.capnp `ok`, `exception`, `exceededCpu` …; io/worker-interface.capnp
 *     `stateless` | `durableObject` | `workflow`), `truncated`, and `cpuTime`/`wallTime` as whole
 *     ms (`trace.cpuTime / kj::MILLISECONDS`);
 *   - a fetch event is `{request: {cf, headers, method, url, getUnredacted()}, response?: {status}}`,
 *     a JS RPC call `{rpcMethod}`, an alarm `{scheduledTime: Date}`, a cron `{scheduledTime: number,
 *     cron}`, a hibernatable WebSocket event `{getWebSocketEvent: {webSocketEventType: "message" |
 *     "close" | "error", …}}` (a property, despite its name: `JSG_READONLY_INSTANCE_PROPERTY`).
 * platform/trace-usage.test.ts holds the builder to items local workerd really produced (field
 * names and types, the event objects' fields).
 * The order of real ones in workerd's own tail test (api/tests/tail-worker-test.js, expected
 * output for `DurableObjectExample`: alarm, fetch, hibernatableWebSocket message) is the order of
 * the Durable Object examples below.
 */

import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import { UsageTail } from "../platform/local/usage-tail.ts";

export type TraceEvent = NonNullable<TraceItem["event"]>;

export interface TraceFields {
  event: TraceEvent | null;
  scriptName: string | null;
  dispatchNamespace?: string;
  entrypoint?: string;
  executionModel?: "stateless" | "durableObject" | "workflow";
  outcome?: string;
  eventTimestamp?: number | null;
  wallTime?: number;
  cpuTime?: number;
  durableObjectId?: string;
  scriptVersionId?: string;
}

/** One trace item with the runtime's fields; unset ones as workerd leaves them for a DO invocation. */
export function traceItem(fields: TraceFields): TraceItem {
  const executionModel = fields.executionModel ?? "durableObject";
  return {
    event: fields.event,
    eventTimestamp: fields.eventTimestamp === undefined ? Date.now() : fields.eventTimestamp,
    logs: [],
    exceptions: [],
    diagnosticsChannelEvents: [],
    scriptName: fields.scriptName,
    ...(fields.entrypoint === undefined ? {} : { entrypoint: fields.entrypoint }),
    scriptVersion: { id: fields.scriptVersionId ?? "00000000-0000-4000-8000-000000000001" },
    ...(fields.dispatchNamespace === undefined ? {} : { dispatchNamespace: fields.dispatchNamespace }),
    scriptTags: [],
    ...(executionModel === "durableObject" ? { durableObjectId: fields.durableObjectId ?? objectId() } : {}),
    outcome: fields.outcome ?? "ok",
    executionModel,
    truncated: false,
    cpuTime: fields.cpuTime ?? 1,
    wallTime: fields.wallTime ?? 10,
  };
}

/** A Durable Object's id as the runtime prints it: 64 hex digits. */
export function objectId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** trace.h `FetchEventInfo`: the request (headers redacted) and, once answered, the response status. */
export function fetchEvent(url: string, status = 200, method = "GET"): TraceItemFetchEventInfo {
  const request: TraceItemFetchEventInfoRequest = {
    cf: undefined,
    headers: {},
    method,
    url,
    getUnredacted: () => request,
  };
  return { request, response: { status } };
}

/** trace.h `JsRpcEventInfo`. */
export function rpcEvent(method: string): TraceItemJsRpcEventInfo {
  return { rpcMethod: method };
}

/** trace.h `AlarmEventInfo`: `scheduledTime` is a Date (kj::Date). */
export function alarmEvent(scheduledTime: number): TraceItemAlarmEventInfo {
  return { scheduledTime: new Date(scheduledTime) };
}

/** trace.h `ScheduledEventInfo` (a cron trigger): `scheduledTime` is a number, with `cron`. */
export function cronEvent(scheduledTime: number, cron = "*/5 * * * *"): TraceItemScheduledEventInfo {
  return { scheduledTime, cron };
}

/** trace.h `HibernatableWebSocketEventInfo` with its `Message`, `Close` or `Error`. */
export function webSocketEvent(type: "message" | "close" | "error"): TraceItemHibernatableWebSocketEventInfo {
  return {
    getWebSocketEvent:
      type === "close" ? { webSocketEventType: type, code: 1000, wasClean: true } : { webSocketEventType: type },
  };
}

/**
 * Trace items local workerd itself produced: `tenantSource` (one ES module) is loaded as a dynamic
 * Worker whose `className` runs as a facet, with `tails` naming Shipyard's `UsageTail`, whose
 * `tail(items)` is observed (calling through); `run` drives the facet. Answers the items of
 * `className` once `count` of them arrived. The caller restores mocks (`vi.restoreAllMocks`).
 */
export async function capturedTraceItems<T extends Rpc.DurableObjectBranded>(
  tenantSource: string,
  className: string,
  count: number,
  run: (facet: Fetcher<T>) => Promise<void>,
): Promise<readonly TraceItem[]> {
  const seen: TraceItem[] = [];
  const original = Reflect.get(UsageTail.prototype, "tail");
  vi.spyOn(UsageTail.prototype, "tail").mockImplementation(async function (this: UsageTail, items) {
    seen.push(...items);
    await Reflect.apply(original, this, [items]);
  });
  const parent = env.COUNTER_SHARD.getByName(`trace-capture-${crypto.randomUUID()}`);
  await runInDurableObject(parent, async (_, state) => {
    const worker = env.LOADER.load({
      compatibilityDate: "2026-11-01",
      mainModule: "tenant.js",
      modules: { "tenant.js": tenantSource },
      tails: [exports.UsageTail({ props: { script: "trace-capture" } })],
    });
    const facet = state.facets.get<T>(className, () => ({ class: worker.getDurableObjectClass<T>(className) }));
    await run(facet);
  });
  const ours = () => seen.filter((item) => item.entrypoint === className);
  await vi.waitUntil(() => ours().length >= count, { timeout: 10_000, interval: 50 });
  return ours();
}
