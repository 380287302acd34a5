/**
 * The local platform's side of a tenant's KV binding: the `TenantKV` object of a namespace id, and
 * the loopback entrypoint the tenant's env holds for it (wrapped in the KV API by
 * platform/local/kv-shim.ts). The props carry the namespace id: a tenant reaches only its own.
 */
import { WorkerEntrypoint, exports } from "cloudflare:workers";
import { KVRequestSchema, type KVResponse } from "./kv-protocol.ts";

/** The local namespace id of a namespace title: the TenantKV object id (64 hex), stable per title. */
export function localNamespaceId(env: Env, title: string): string {
  return env.TENANT_KV.idFromName(title).toString();
}

export interface KVBindingProps {
  namespaceId: string;
}

/** A tenant's KV binding on the local platform. */
export class TenantKVBinding extends WorkerEntrypoint<Env, KVBindingProps> {
  override async fetch(request: Request): Promise<Response> {
    const parsed = KVRequestSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) {
      const answer: KVResponse = { ok: false, error: `KV request refused: ${parsed.error.issues[0]?.message ?? ""}` };
      return Response.json(answer, { status: 400 });
    }
    const stub = this.env.TENANT_KV.get(this.env.TENANT_KV.idFromString(this.ctx.props.namespaceId));
    return Response.json(await stub.call(parsed.data));
  }
}

/** The KV binding stub for a namespace. */
export function kvBinding(props: KVBindingProps): Fetcher {
  return exports.TenantKVBinding({ props });
}
