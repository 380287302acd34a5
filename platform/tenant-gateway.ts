import { WorkerEntrypoint } from "cloudflare:workers";
import { describeError, log } from "../lib/log.ts";
import { sendAll } from "../lib/queue.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import type { GatewayProps } from "./local-runtime.ts";
import { QUEUES } from "../lib/queues.ts";

/** A Durable Object of a tenant: which script, which storage namespace, which object. */
export function tenantObjectName(script: string, namespace: string, objectKey: string): string {
  return `${script}/${namespace}/${objectKey}`;
}

/**
 * What a tenant isolate may call back into on the local platform (its only way out: the dynamic
 * Worker has no network). Instances are minted per version with `ctx.exports.TenantGateway({props})`,
 * so a tenant can only reach its own script's objects.
 */
export class TenantGateway extends WorkerEntrypoint<Env, GatewayProps> {
  /** `stub.fetch()` on one of the tenant's Durable Objects. */
  async objectFetch(namespace: string, className: string, objectKey: string, request: Request): Promise<Response> {
    const props = this.ctx.props;
    return this.env.TENANT_OBJECT_HOST.getByName(tenantObjectName(props.script, namespace, objectKey)).objectFetch(
      { ...props, className },
      request,
    );
  }

  /** An RPC call on one of the tenant's Durable Objects. */
  async objectCall(
    namespace: string,
    className: string,
    objectKey: string,
    method: string,
    args: unknown[],
  ): Promise<unknown> {
    const props = this.ctx.props;
    return this.env.TENANT_OBJECT_HOST.getByName(tenantObjectName(props.script, namespace, objectKey)).objectCall(
      { ...props, className },
      method,
      args,
    );
  }

  /**
   * The tenant's `USAGE` Analytics Engine binding, locally: each data point the metering wrapper
   * writes becomes a `do_usage` telemetry event, so local usage travels through the queue and the
   * shards like all other telemetry and lands in D1 (production writes Analytics Engine instead).
   */
  async writeDataPoint(point: AnalyticsEngineDataPoint): Promise<void> {
    const event = usageEvent(this.ctx.props.script, point);
    if (!event) {
      log.warn("tenant_usage_point_ignored", { script: this.ctx.props.script, blobs: point.blobs });
      return;
    }
    try {
      // Awaited here, inside the gateway's own invocation: the tenant does not await it (the
      // Analytics Engine API is fire-and-forget), but this call runs to completion regardless.
      await sendAll(this.env.TELEMETRY_QUEUE, QUEUES.telemetry.name, [
        envelope("telemetry.events", { events: [event] }),
      ]);
    } catch (error) {
      log.error("tenant_usage_send_failed", { script: this.ctx.props.script, error: describeError(error) });
    }
  }
}

/**
 * A metering data point (`blobs: [project, class, handler, outcome]`, `doubles: [wall ms]`, see
 * platform/meter-wrapper.ts) as a `do_usage` runtime event, or null if it is not one.
 */
export function usageEvent(script: string, point: AnalyticsEngineDataPoint): RuntimeEvent | null {
  const [, className, handler, outcome] = point.blobs ?? [];
  const [wallMs] = point.doubles ?? [];
  if (typeof className !== "string" || typeof handler !== "string" || typeof outcome !== "string") return null;
  if (typeof wallMs !== "number" || !Number.isFinite(wallMs)) return null;
  return {
    id: crypto.randomUUID(),
    project_id: script,
    type: "do_usage",
    ts: Date.now(),
    data: { class: className, handler, outcome, wall_ms: Math.max(0, Math.round(wallMs)) },
  };
}
