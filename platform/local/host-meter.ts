import { describeError, log } from "../../lib/log.ts";
import { sendAll } from "../../lib/queue.ts";
import { QUEUES } from "../../lib/queues.ts";
import { envelope } from "../../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../../schemas/runtime-event.schema.ts";

/**
 * Durable Object metering on the local platform, measured by the host object
 * (platform/local/tenant-object-host.do.ts) around each call it makes into the tenant's facet. The
 * clock and the record are Shipyard's: nothing the tenant defines, replaces or names (an own `fetch`,
 * a getter, `globalThis.Proxy`, `Date.now`, a binding called `USAGE`) runs in this isolate, and the
 * tenant holds no binding that writes usage.
 */

/** One metered invocation: which class, which handler (`fetch`, `alarm`, `rpc:<method>`), how it ended. */
export interface Invocation {
  script: string;
  className: string;
  handler: string;
  outcome: "ok" | "error";
  wallMs: number;
}

/** The `do_usage` runtime event of an invocation (the shape enforcement sums, platform/usage-source.ts). */
export function usageEvent(invocation: Invocation): RuntimeEvent {
  return {
    id: crypto.randomUUID(),
    project_id: invocation.script,
    type: "do_usage",
    ts: Date.now(),
    data: {
      class: invocation.className,
      handler: invocation.handler,
      outcome: invocation.outcome,
      wall_ms: Math.max(0, Math.round(invocation.wallMs)),
    },
  };
}

/**
 * Runs `call` and records its wall time once it settles, whatever it returns or throws. The record
 * is sent inside `waitUntil`, so the caller does not wait for the queue; a failed send is logged.
 */
export async function metered<T>(
  env: Env,
  waitUntil: (promise: Promise<unknown>) => void,
  target: Omit<Invocation, "outcome" | "wallMs">,
  call: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  let outcome: Invocation["outcome"] = "error";
  try {
    const result = await call();
    outcome = "ok";
    return result;
  } finally {
    waitUntil(sendUsage(env, [usageEvent({ ...target, outcome, wallMs: Date.now() - started })]));
  }
}

/** Sends usage records into the telemetry pipeline; a failed send is logged, never thrown at the tenant. */
export async function sendUsage(env: Env, events: RuntimeEvent[]): Promise<void> {
  if (events.length === 0) return;
  try {
    await sendAll(env.TELEMETRY_QUEUE, QUEUES.telemetry.name, [envelope("telemetry.events", { events })]);
  } catch (error) {
    log.error("tenant_usage_send_failed", { project_id: events[0]?.project_id, error: describeError(error) });
  }
}
