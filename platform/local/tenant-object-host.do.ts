import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { describeError, log } from "../../lib/log.ts";
import { FACET_PROPS_KEY, type ObjectAddress, parseJsonHeader } from "./gateway-protocol.ts";
import { type GatewayProps, loadVersion, localPlatform } from "./local-runtime.ts";

/** Which object, of which class and version, a call is for. */
export interface ObjectTarget extends GatewayProps, ObjectAddress {
  className: string;
  /** The name the tenant's stub was made with (`getByName`), null for ids from elsewhere. */
  name: string | null;
}

/** On a request from the gateway to the host: the {@link ObjectTarget} as JSON (never from a tenant). */
export const HOST_TARGET_HEADER = "x-shipyard-host-target";

/** What the host remembers about the object it hosts, so an alarm can find the code to run. */
interface HostedObject extends ObjectAddress {
  script: string;
  generation: number;
}

const ObjectTargetSchema = z.object({
  script: z.string(),
  versionId: z.string(),
  versionKey: z.string(),
  generation: z.number().int(),
  className: z.string(),
  namespace: z.string(),
  objectKey: z.string(),
  name: z.string().nullable(),
});

/** What a facet's props tell it about itself. */
interface FacetSelf extends ObjectAddress {
  name: string | null;
}

const FACET = "app";
const HOSTED_KEY = "hosted";
const RUNNING_KEY = "running_version_key";
const NAME_KEY = "name";

/**
 * Hosts one tenant Durable Object on the local platform: the tenant's class (from its current
 * version, loaded with the Worker Loader) runs as a facet of this object, with its own SQLite
 * storage that survives requests, redeploys and rollbacks. A new version aborts the running facet
 * so the next call starts the new code against the same storage; a deleted script's storage
 * (an older generation) is destroyed before the object is used again.
 *
 * Facets cannot set alarms, so this object holds the tenant object's alarm: the facet's
 * `ctx.storage.setAlarm/getAlarm/deleteAlarm` arrive here (through the gateway), and `alarm()`
 * starts the current version's facet and calls its `alarm()`. A throw propagates, so the runtime
 * retries the alarm with its usual backoff, as it would the tenant's own.
 */
export class TenantObjectHost extends DurableObject<Env> {
  /**
   * `stub.fetch()` on the tenant object, from the gateway. A fetch, not RPC: the facet may answer
   * 101 with a WebSocket (plain or hibernatable), which a fetch carries and RPC cannot.
   */
  override async fetch(request: Request): Promise<Response> {
    const parsed = ObjectTargetSchema.safeParse(parseJsonHeader(request.headers.get(HOST_TARGET_HEADER)));
    if (!parsed.success) {
      return Response.json(
        { error: { code: "bad_host_target", message: `missing or bad ${HOST_TARGET_HEADER}` } },
        { status: 400 },
      );
    }
    const headers = new Headers(request.headers);
    headers.delete(HOST_TARGET_HEADER);
    return this.#facet(parsed.data).fetch(new Request(request, { headers }));
  }

  /** An RPC call on the tenant object. */
  async objectCall(target: ObjectTarget, method: string, args: unknown[]): Promise<unknown> {
    const facet: unknown = this.#facet(target);
    const fn: unknown = typeof facet === "object" && facet !== null ? Reflect.get(facet, method) : undefined;
    if (typeof fn !== "function") throw new TypeError(`${target.className} has no method ${method}`);
    return Reflect.apply(fn, facet, args);
  }

  /** The tenant object's `ctx.storage.getAlarm()`. */
  async tenantGetAlarm(): Promise<number | null> {
    return this.ctx.storage.getAlarm();
  }

  /** The tenant object's `ctx.storage.setAlarm()`: this object's alarm, and who to call when it fires. */
  async tenantSetAlarm(hosted: HostedObject, time: number): Promise<void> {
    this.#remember(hosted);
    await this.ctx.storage.setAlarm(time);
  }

  /** The tenant object's `ctx.storage.deleteAlarm()`. */
  async tenantDeleteAlarm(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
  }

  /** The tenant object's alarm fired: run the current version's `alarm()` on its facet. */
  override async alarm(info?: AlarmInvocationInfo): Promise<void> {
    const hosted = this.ctx.storage.kv.get<HostedObject>(HOSTED_KEY);
    if (!hosted) return;
    const current = await localPlatform(this.env, hosted.script).current();
    if (!current || current.generation !== hosted.generation) {
      // The script was deleted (and maybe created again): its objects' alarms die with it.
      log.info("tenant_alarm_dropped", { object: this.ctx.id.name, reason: "script deleted" });
      return;
    }
    const className = Object.entries(current.classes).find(([, namespace]) => namespace === hosted.namespace)?.[0];
    if (className === undefined) {
      log.info("tenant_alarm_dropped", { object: this.ctx.id.name, reason: "class deleted" });
      return;
    }
    const facet: unknown = this.#facet({
      script: current.script,
      versionId: current.versionId,
      versionKey: current.versionKey,
      generation: current.generation,
      className,
      namespace: hosted.namespace,
      objectKey: hosted.objectKey,
      name: null,
    });
    const run: unknown =
      typeof facet === "object" && facet !== null ? Reflect.get(facet, "__shipyardAlarm") : undefined;
    if (typeof run !== "function") throw new TypeError(`${className} cannot receive alarms`);
    try {
      await Reflect.apply(run, facet, [{ retryCount: info?.retryCount ?? 0, isRetry: info?.isRetry ?? false }]);
    } catch (error) {
      log.warn("tenant_alarm_failed", {
        object: this.ctx.id.name,
        retry_count: info?.retryCount ?? 0,
        error: describeError(error),
      });
      throw error;
    }
  }

  #remember(hosted: HostedObject): void {
    const known = this.ctx.storage.kv.get<HostedObject>(HOSTED_KEY);
    if (
      known?.script !== hosted.script ||
      known.generation !== hosted.generation ||
      known.namespace !== hosted.namespace ||
      known.objectKey !== hosted.objectKey
    ) {
      this.ctx.storage.kv.put(HOSTED_KEY, hosted);
    }
  }

  #facet(target: ObjectTarget): Fetcher {
    const generation = this.ctx.storage.kv.get<number>("generation") ?? target.generation;
    if (generation < target.generation) {
      // The script was deleted and created again: the old storage must not leak into the new one.
      this.ctx.facets.delete(FACET);
      this.ctx.storage.kv.delete(HOSTED_KEY);
      void this.ctx.storage.deleteAlarm();
      log.info("tenant_object_storage_destroyed", { object: this.ctx.id.name, generation });
    }
    if (generation !== target.generation || this.ctx.storage.kv.get("generation") === undefined) {
      this.ctx.storage.kv.put("generation", target.generation);
    }
    // Which version the facet runs is kept in storage, not memory: the host can be evicted while
    // its facet keeps running (evictDurableObject on the host alone shows it), and a fresh host
    // that forgot would hand the next call to the old code.
    const running = this.ctx.storage.kv.get<string>(RUNNING_KEY);
    if (running !== target.versionKey) {
      if (running !== undefined) this.ctx.facets.abort(FACET, new Error("a new version of the script was deployed"));
      this.ctx.storage.kv.put(RUNNING_KEY, target.versionKey);
    }
    // The name the object was first reached by, kept: an alarm or an id from idFromString brings none.
    if (target.name !== null && this.ctx.storage.kv.get<string>(NAME_KEY) !== target.name) {
      this.ctx.storage.kv.put(NAME_KEY, target.name);
    }
    const name = this.ctx.storage.kv.get<string>(NAME_KEY) ?? null;
    const worker = loadVersion(this.env, target, (props) => this.ctx.exports.TenantGateway({ props }));
    // The facet learns its own address from its props (its alarm calls name it to the gateway) and
    // the id the tenant knows it by (ctx.id).
    const self: FacetSelf = { namespace: target.namespace, objectKey: target.objectKey, name };
    return this.ctx.facets.get(FACET, () => ({
      class: worker.getDurableObjectClass(target.className, { props: { [FACET_PROPS_KEY]: self } }),
    }));
  }
}
