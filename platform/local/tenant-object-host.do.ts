import { DurableObject } from "cloudflare:workers";
import { log } from "../../lib/log.ts";
import { type GatewayProps, loadVersion } from "./local-runtime.ts";

/** Which object, of which class and version, a call is for. */
export interface ObjectTarget extends GatewayProps {
  className: string;
}

const FACET = "app";

/**
 * Hosts one tenant Durable Object on the local platform: the tenant's class (from its current
 * version, loaded with the Worker Loader) runs as a facet of this object, with its own SQLite
 * storage that survives requests, redeploys and rollbacks. A new version aborts the running facet
 * so the next call starts the new code against the same storage; a deleted script's storage
 * (an older generation) is destroyed before the object is used again.
 */
export class TenantObjectHost extends DurableObject<Env> {
  #runningKey: string | null = null;

  /** `fetch()` on the tenant object. */
  async objectFetch(target: ObjectTarget, request: Request): Promise<Response> {
    return this.#facet(target).fetch(request);
  }

  /** An RPC call on the tenant object. */
  async objectCall(target: ObjectTarget, method: string, args: unknown[]): Promise<unknown> {
    const facet: unknown = this.#facet(target);
    const fn: unknown = typeof facet === "object" && facet !== null ? Reflect.get(facet, method) : undefined;
    if (typeof fn !== "function") throw new TypeError(`${target.className} has no method ${method}`);
    return Reflect.apply(fn, facet, args);
  }

  #facet(target: ObjectTarget): Fetcher {
    const generation = this.ctx.storage.kv.get<number>("generation") ?? target.generation;
    if (generation < target.generation) {
      // The script was deleted and created again: the old storage must not leak into the new one.
      this.ctx.facets.delete(FACET);
      log.info("tenant_object_storage_destroyed", { object: this.ctx.id.name, generation });
    }
    if (generation !== target.generation || this.ctx.storage.kv.get("generation") === undefined) {
      this.ctx.storage.kv.put("generation", target.generation);
    }
    if (this.#runningKey !== null && this.#runningKey !== target.versionKey) {
      this.ctx.facets.abort(FACET, new Error("a new version of the script was deployed"));
    }
    this.#runningKey = target.versionKey;
    const worker = loadVersion(this.env, target, (props) => this.ctx.exports.TenantGateway({ props }));
    return this.ctx.facets.get(FACET, () => ({ class: worker.getDurableObjectClass(target.className) }));
  }
}
