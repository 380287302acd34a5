import { WorkerEntrypoint } from "cloudflare:workers";
import { z } from "zod";
import { describeError, log } from "../../lib/log.ts";
import { sendAll } from "../../lib/queue.ts";
import { QUEUES } from "../../lib/queues.ts";
import { envelope } from "../../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../../schemas/runtime-event.schema.ts";
import {
  AlarmRequestSchema,
  GATEWAY_OPS,
  type GatewayOp,
  OP_HEADER,
  ObjectTargetHeaderSchema,
  TARGET_HEADER,
  parseJsonHeader,
} from "./gateway-protocol.ts";
import type { GatewayProps } from "./local-runtime.ts";
import { HOST_TARGET_HEADER, type ObjectTarget } from "./tenant-object-host.do.ts";

/** A Durable Object of a tenant: which script, which storage namespace, which object. */
export function tenantObjectName(script: string, namespace: string, objectKey: string): string {
  return `${script}/${namespace}/${objectKey}`;
}

const DataPointSchema = z.object({
  indexes: z.array(z.string().nullable()).optional(),
  blobs: z.array(z.string().nullable()).optional(),
  doubles: z.array(z.number()).optional(),
});

function isOp(value: string | null): value is GatewayOp {
  return GATEWAY_OPS.some((op) => op === value);
}

function answer(value: unknown): Response {
  return Response.json({ value: value ?? null });
}

function refuse(status: number, message: string): Response {
  return Response.json({ error: { code: "gateway_refused", message } }, { status });
}

/**
 * What a tenant isolate may call back into on the local platform (its only way out: the dynamic
 * Worker has no network). Instances are minted per version with `ctx.exports.TenantGateway({props})`,
 * so a tenant can only reach its own script's objects. The tenant side calls `fetch` for
 * everything but its own RPC calls (platform/local/gateway-protocol.ts says why).
 */
export class TenantGateway extends WorkerEntrypoint<Env, GatewayProps> {
  /** The gateway's operations, chosen by the `x-shipyard-gateway-op` header. */
  override async fetch(request: Request): Promise<Response> {
    const op = request.headers.get(OP_HEADER);
    if (!isOp(op)) return refuse(400, `unknown gateway operation ${op ?? "(none)"}`);
    switch (op) {
      case "object":
        return this.#objectFetch(request);
      case "usage":
        return this.#usage(request);
      default:
        return this.#alarm(op, request);
    }
  }

  /** `stub.fetch()` on one of the tenant's Durable Objects: a fetch all the way, so a 101 with its WebSocket comes back. */
  async #objectFetch(request: Request): Promise<Response> {
    const parsed = ObjectTargetHeaderSchema.safeParse(parseJsonHeader(request.headers.get(TARGET_HEADER)));
    if (!parsed.success) return refuse(400, `bad ${TARGET_HEADER} header`);
    const { namespace, objectKey, className, name } = parsed.data;
    const target: ObjectTarget = { ...this.#props(), className, namespace, objectKey, name: name ?? null };
    const headers = new Headers(request.headers);
    headers.delete(OP_HEADER);
    headers.delete(TARGET_HEADER);
    headers.set(HOST_TARGET_HEADER, JSON.stringify(target));
    return this.#host(namespace, objectKey).fetch(new Request(request, { headers }));
  }

  async #alarm(op: "alarm.get" | "alarm.set" | "alarm.delete", request: Request): Promise<Response> {
    const parsed = AlarmRequestSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return refuse(400, "bad alarm request");
    const { namespace, objectKey, time } = parsed.data;
    const host = this.#host(namespace, objectKey);
    const hosted = { script: this.ctx.props.script, generation: this.ctx.props.generation, namespace, objectKey };
    if (op === "alarm.get") return answer(await host.tenantGetAlarm());
    if (op === "alarm.delete") {
      await host.tenantDeleteAlarm();
      return answer(null);
    }
    if (time === undefined) return refuse(400, "alarm.set needs a time");
    await host.tenantSetAlarm(hosted, time);
    return answer(null);
  }

  async #usage(request: Request): Promise<Response> {
    const parsed = DataPointSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return refuse(400, "bad data point");
    // After the answer: the tenant does not wait for Analytics Engine writes either.
    this.ctx.waitUntil(this.#writeDataPoint(parsed.data));
    return answer(null);
  }

  #props(): GatewayProps {
    const { script, versionId, versionKey, generation } = this.ctx.props;
    return { script, versionId, versionKey, generation };
  }

  #host(namespace: string, objectKey: string) {
    return this.env.TENANT_OBJECT_HOST.getByName(tenantObjectName(this.ctx.props.script, namespace, objectKey));
  }

  /** An RPC call on one of the tenant's Durable Objects (`name`: the one the stub was made with, if any). */
  async objectCall(
    namespace: string,
    className: string,
    objectKey: string,
    method: string,
    args: unknown[],
    name: string | null = null,
  ): Promise<unknown> {
    return this.#host(namespace, objectKey).objectCall(
      { ...this.#props(), className, namespace, objectKey, name },
      method,
      args,
    );
  }

  /**
   * The tenant's `USAGE` Analytics Engine binding, locally: each data point the metering wrapper
   * writes becomes a `do_usage` telemetry event, so local usage travels through the queue and the
   * shards like all other telemetry and lands in D1 (production writes Analytics Engine instead).
   */
  async #writeDataPoint(point: AnalyticsEngineDataPoint): Promise<void> {
    const event = usageEvent(this.ctx.props.script, point);
    if (!event) {
      log.warn("tenant_usage_point_ignored", { script: this.ctx.props.script, blobs: point.blobs });
      return;
    }
    try {
      // Inside the gateway's own invocation (waitUntil): the tenant does not await it (the
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
