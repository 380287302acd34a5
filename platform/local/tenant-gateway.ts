import { WorkerEntrypoint } from "cloudflare:workers";
import {
  AlarmRequestSchema,
  GATEWAY_OPS,
  type GatewayOp,
  OP_HEADER,
  ObjectTargetHeaderSchema,
  TARGET_HEADER,
  parseJsonHeader,
} from "./gateway-protocol.ts";
import { type GatewayProps, localPlatform } from "./local-runtime.ts";
import { HOST_TARGET_HEADER, type ObjectTarget } from "./tenant-object-host.do.ts";

/** A Durable Object of a tenant: which script, which storage namespace, which object. */
export function tenantObjectName(script: string, namespace: string, objectKey: string): string {
  return `${script}/${namespace}/${objectKey}`;
}

function isOp(value: string | null): value is GatewayOp {
  return GATEWAY_OPS.some((op) => op === value);
}

function answer(value: unknown): Response {
  return Response.json({ value: value ?? null });
}

function unreachable(className: string | null, namespace: string): string {
  return className === null
    ? `storage namespace ${namespace} is not a Durable Object class of this script`
    : `${className} (${namespace}) is not bound to this script (undeclared, or the binding was removed)`;
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
      default:
        return this.#alarm(op, request);
    }
  }

  /** `stub.fetch()` on one of the tenant's Durable Objects: a fetch all the way, so a 101 with its WebSocket comes back. */
  async #objectFetch(request: Request): Promise<Response> {
    const parsed = ObjectTargetHeaderSchema.safeParse(parseJsonHeader(request.headers.get(TARGET_HEADER)));
    if (!parsed.success) return refuse(400, `bad ${TARGET_HEADER} header`);
    const { namespace, objectKey, className, name } = parsed.data;
    if (!(await this.#mayReach(namespace, className))) return refuse(403, unreachable(className, namespace));
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
    if (!(await this.#mayReach(namespace, null))) return refuse(403, unreachable(null, namespace));
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

  /** Whether this version may reach `namespace` (of `className`): LocalPlatform.mayReach. */
  async #mayReach(namespace: string, className: string | null): Promise<boolean> {
    return localPlatform(this.env, this.ctx.props.script).mayReach(this.ctx.props.generation, namespace, className);
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
    if (!(await this.#mayReach(namespace, className))) throw new Error(unreachable(className, namespace));
    return this.#host(namespace, objectKey).objectCall(
      { ...this.#props(), className, namespace, objectKey, name },
      method,
      args,
    );
  }
}
