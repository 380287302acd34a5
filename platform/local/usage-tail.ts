import { WorkerEntrypoint } from "cloudflare:workers";
import { tracedInvocation } from "../trace-usage.ts";
import { type Invocation, sendUsage, usageEvent } from "./host-meter.ts";

/** Props of a version's tail: whose invocations it receives. */
export interface UsageTailProps {
  script: string;
}

/**
 * The Tail Worker of every tenant version on the local platform (Worker Loader `tails`): the
 * runtime hands it a trace item per invocation of the tenant's code, which the tenant cannot see,
 * write or suppress. It meters what the host object never sees: hibernatable WebSocket events,
 * which the runtime delivers to the facet directly. Fetch, RPC and alarms are metered by the host
 * (platform/local/host-meter.ts), so their trace items are skipped here (never counted twice).
 * The trace → invocation mapping is the one production's tail handler uses (platform/trace-usage.ts).
 *
 * Local workerd reports `wallTime` 0 in trace items, so locally a WebSocket event counts as an
 * invocation with 0 ms; Cloudflare's trace items carry the real wall time.
 *
 * The tenant never holds a stub of this entrypoint: it is only named in the loader's `tails`.
 */
export class UsageTail extends WorkerEntrypoint<Env, UsageTailProps> {
  override async tail(items: TraceItem[]): Promise<void> {
    const events = items.flatMap((item) => {
      const invocation = webSocketInvocation(this.ctx.props.script, item);
      return invocation ? [usageEvent(invocation)] : [];
    });
    await sendUsage(this.env, events);
  }
}

/** A trace item of a hibernatable WebSocket event on a tenant class, as a metered invocation. */
export function webSocketInvocation(script: string, item: TraceItem): Invocation | null {
  const traced = tracedInvocation(item);
  if (traced === null || !traced.handler.startsWith("webSocket")) return null;
  return {
    script,
    className: traced.className,
    handler: traced.handler,
    outcome: traced.outcome,
    wallMs: traced.wallMs,
  };
}
