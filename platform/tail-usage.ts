/**
 * Durable Object metering in production: Shipyard's main Worker is the Tail Worker of every script
 * it uploads to its dispatch namespace (`tail_consumers` in the upload metadata,
 * platform/cloudflare-script-host.ts), and this `tail(items)` handler turns the runtime's trace
 * items into `do_usage` events on the telemetry queue: the internal path the local host meter
 * uses (platform/local/host-meter.ts), never the public ingest API, which refuses `do_usage`.
 *
 * What a tenant can do about it: nothing. The runtime builds trace items after each invocation,
 * outside the tenant's isolate (workerd src/workerd/api/trace.c++); the tenant holds no binding
 * that writes usage and cannot edit its own upload metadata. Only items of scripts in Shipyard's
 * dispatch namespace count (any Worker on the account may name Shipyard as its tail consumer;
 * its items carry no or another `dispatchNamespace`), mapped to a project by the script naming rule
 * (`projectOfScript`), and only Durable Object invocations (`executionModel: "durableObject"`).
 *
 * Tail delivery is at least once from this handler's point of view: a batch seen twice counts
 * once, because each event's id is derived from its trace item (script, version, object, class,
 * handler, timestamp, times, outcome) and the pipeline stores one row per id.
 */
import { backoffMs } from "../lib/backoff.ts";
import { describeError, log } from "../lib/log.ts";
import { MESSAGE_BUDGET_BYTES, packMessages, sendSized } from "../lib/queue.ts";
import { QUEUES } from "../lib/queues.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { projectOfScript } from "./deploy-plan.ts";
import { usageEvent } from "./local/host-meter.ts";
import { tracedInvocation } from "./trace-usage.ts";

/** Why a trace item was not counted (one log line per batch sums them). */
export type SkipReason = "outside_namespace" | "not_a_project" | "not_durable_object" | "not_metered";

export interface TraceUsage {
  events: RuntimeEvent[];
  skipped: Partial<Record<SkipReason, number>>;
}

/** Room for the envelope's own fields around the events array. */
const ENVELOPE_OVERHEAD_BYTES = 512;
/** Attempts of the queue send before the batch's usage is given up (and logged as lost). */
const SEND_ATTEMPTS = 3;

/**
 * The `do_usage` events of a batch of trace items from scripts of `namespace`. Pure but for the
 * hashing: the same items always give the same events, ids included (`now` only stands in for a
 * missing `eventTimestamp` and caps one ahead of the clock, and is not part of any id).
 */
export async function usageOfTraces(
  items: readonly TraceItem[],
  options: { namespace: string; now: number },
): Promise<TraceUsage> {
  const skipped: TraceUsage["skipped"] = {};
  const skip = (reason: SkipReason) => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  const events: RuntimeEvent[] = [];
  // Identical invocations in one batch (same object, same millisecond, same times) are distinct
  // invocations: each one's position among its twins is part of its id.
  const twins = new Map<string, number>();
  for (const item of items) {
    if (item.dispatchNamespace !== options.namespace) {
      skip("outside_namespace");
      continue;
    }
    const project = item.scriptName === null ? null : projectOfScript(item.scriptName);
    if (project === null) {
      skip("not_a_project");
      continue;
    }
    if (item.executionModel !== "durableObject") {
      skip("not_durable_object");
      continue;
    }
    const invocation = tracedInvocation(item);
    if (invocation === null) {
      skip("not_metered");
      continue;
    }
    const eventTimestamp =
      typeof item.eventTimestamp === "number" && Number.isFinite(item.eventTimestamp) ? item.eventTimestamp : null;
    const key = JSON.stringify([
      project,
      item.scriptVersion?.id ?? null,
      item.durableObjectId ?? null,
      invocation.className,
      invocation.handler,
      eventTimestamp,
      invocation.wallMs,
      invocation.cpuMs,
      item.outcome,
    ]);
    const twin = twins.get(key) ?? 0;
    twins.set(key, twin + 1);
    const event = usageEvent({ script: project, ...invocation });
    events.push({
      ...event,
      id: `tail-${await sha256Hex(`${key}#${twin}`)}`,
      // The invocation's own time; a trace arrives after its invocation ended, so a timestamp
      // ahead of the clock is skew, counted now rather than in a window that has not begun.
      ts: Math.round(Math.min(eventTimestamp ?? options.now, options.now)),
      data: { ...event.data, cpu_ms: invocation.cpuMs },
    });
  }
  return { events, skipped };
}

/**
 * Shipyard's `tail(items)` handler (index.ts wires it). Counts only on `SCRIPT_HOST=cloudflare`:
 * locally the host object and the local `UsageTail` meter, and a second count would double them.
 */
export async function tail(items: readonly TraceItem[], env: Env): Promise<void> {
  if (env.SCRIPT_HOST !== "cloudflare") {
    log.warn("tail_ignored_locally", { items: items.length });
    return;
  }
  const { events, skipped } = await usageOfTraces(items, { namespace: env.CF_DISPATCH_NAMESPACE, now: Date.now() });
  // Debug: most batches carry the tenant's stateless invocations too, so skips are routine.
  if (Object.keys(skipped).length > 0) log.debug("tail_items_skipped", { items: items.length, ...skipped });
  if (events.length === 0) return;
  const messages = packMessages(events, MESSAGE_BUDGET_BYTES, ENVELOPE_OVERHEAD_BYTES, (group) =>
    envelope("telemetry.events", { events: group }),
  );
  for (let attempt = 1; ; attempt++) {
    try {
      // A retried send repeats ids the pipeline may already hold: it stores one row per id.
      await sendSized(env.TELEMETRY_QUEUE, QUEUES.telemetry.name, messages);
      return;
    } catch (error) {
      if (attempt >= SEND_ATTEMPTS) {
        log.error("tail_usage_send_failed", { events: events.length, attempts: attempt, error: describeError(error) });
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt, 200, 2_000)));
    }
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest.subarray(0, 20), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
