/**
 * The local platform's side of a tenant's D1 binding: the `TenantDatabase` object of a database id,
 * and the loopback entrypoint the tenant's env holds for it. The tenant-side D1 API
 * (prepare/bind/first/all/run/raw/batch/exec) is the shim in platform/local/d1-shim.ts, which
 * speaks platform/d1-protocol.ts to this entrypoint; the props carry the database id, so a tenant
 * can only reach the databases its version was bound to.
 */
import { WorkerEntrypoint, exports } from "cloudflare:workers";
import { D1RequestSchema, type D1Response } from "./d1-protocol.ts";

/** The local database id of a database name: the TenantDatabase object id (64 hex), stable per name. */
export function localDatabaseId(env: Env, name: string): string {
  return env.TENANT_DATABASE.idFromName(name).toString();
}

/** The TenantDatabase object holding a local database. */
export function tenantDatabase(env: Env, databaseId: string) {
  return env.TENANT_DATABASE.get(env.TENANT_DATABASE.idFromString(databaseId));
}

export interface D1BindingProps {
  databaseId: string;
}

/** A tenant's D1 binding on the local platform (wrapped by the shim in the tenant isolate). */
export class TenantD1Binding extends WorkerEntrypoint<Env, D1BindingProps> {
  override async fetch(request: Request): Promise<Response> {
    const parsed = D1RequestSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) {
      const answer: D1Response = {
        ok: false,
        error: `D1_ERROR: bad request: ${parsed.error.issues[0]?.message ?? ""}`,
      };
      return Response.json(answer, { status: 400 });
    }
    return Response.json(await tenantDatabase(this.env, this.ctx.props.databaseId).query(parsed.data));
  }
}

/** The D1 binding stub for a database. */
export function d1Binding(props: D1BindingProps): Fetcher {
  return exports.TenantD1Binding({ props });
}
