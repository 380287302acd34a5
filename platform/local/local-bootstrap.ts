/**
 * The local platform's entry module for a tenant Worker (`__shipyard_local.mjs`). In production the
 * Workers for Platforms runtime gives a tenant real Durable Object namespaces; locally a tenant runs
 * as a dynamic Worker (Worker Loader), whose `env` can only carry plain values and RPC stubs. This
 * module, generated per version, sits in front of the uploaded main module and turns the env the
 * loader hands it into the env the tenant expects:
 *
 *  - each `durable_object_namespace` binding becomes a namespace object with the usual synchronous
 *    `idFromName` / `idFromString` / `newUniqueId` / `get` / `getByName`, whose stubs forward
 *    `fetch` (as a fetch, so WebSocket upgrades and old compatibility dates work, see
 *    gateway-protocol.ts) and RPC calls through the Shipyard gateway to a host Durable Object,
 *    where the tenant's class runs as a facet with its own SQLite storage;
 *  - a facet's `ctx.storage.setAlarm/getAlarm/deleteAlarm` go to the host object, which holds the
 *    real alarm (facets cannot set alarms) and calls the facet's `alarm()` when it fires;
 *  - no metering binding: usage is measured by the host object around each call into the facet
 *    (platform/local/host-meter.ts), where tenant code cannot reach it;
 *  - a binding the platform removed (enforcement) is really absent, but reading it is noticed: if
 *    the request then fails, the answer is 503 `do_binding_removed` instead of an opaque 500;
 *  - a default export that is a class (`WorkerEntrypoint`) serves fetch like a handler object;
 *  - `__shipyardStartup` is an entrypoint that runs no tenant code: calling it only evaluates the
 *    modules, which is how a deploy checks that a version starts (platform/local/startup-check.ts).
 */
import { D1_SHIM_MODULE } from "./d1-shim.ts";
import { KV_SHIM_MODULE } from "./kv-shim.ts";
import { R2_SHIM_MODULE } from "./r2-shim.ts";
import { FACET_PROPS_KEY, GATEWAY_ORIGIN, OP_HEADER, TARGET_HEADER } from "./gateway-protocol.ts";

export const LOCAL_BOOTSTRAP_MODULE = "__shipyard_local.mjs";
/** The bootstrap's entrypoint that only evaluates the modules (the deploy's startup check). */
export const STARTUP_ENTRYPOINT = "__shipyardStartup";

export interface LocalDurableObjectBinding {
  /** Binding name in the tenant's env, e.g. "COUNTER". */
  binding: string;
  /** Exported class name in the tenant's main module (as re-exported by the entry module). */
  className: string;
  /** Storage namespace key: stays the same when a class is renamed. */
  namespace: string;
}

export interface LocalBootstrapInput {
  /** Module the bootstrap wraps: the upload's entry module (platform/meter-wrapper.ts, which no longer meters). */
  innerModule: string;
  /** Durable Object classes to export (every class the script declares, bound or not). */
  classes: string[];
  bindings: LocalDurableObjectBinding[];
  /** Binding names removed from the script since it was uploaded (enforcement). */
  removed: string[];
  /** D1 bindings: the env value (a TenantD1Binding stub) is wrapped by the D1 shim (platform/local/d1-shim.ts). */
  d1?: string[];
  /** KV bindings: the env value (a TenantKVBinding stub) is wrapped by the KV shim (platform/local/kv-shim.ts). */
  kv?: string[];
  /** R2 bindings: the env value (a TenantR2Binding stub) is wrapped by the R2 shim (platform/local/r2-shim.ts). */
  r2?: string[];
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MODULE_NAME = /^[A-Za-z0-9_.\-/]+$/;

/**
 * The id `idFromName(name)` gives on the local platform: 64 hex digits like a real id (FNV-1a with
 * four seeds). Embedded in the bootstrap as source, so tests and tools compute the same ids.
 */
export function objectKeyOf(name: string): string {
  const bytes = new TextEncoder().encode(name);
  let out = "";
  for (const seed of [0x811c9dc5, 0x01000193, 0x9e3779b9, 0x85ebca6b]) {
    for (const round of [0, 1]) {
      let h = (seed ^ round) >>> 0;
      for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
      out += h.toString(16).padStart(8, "0");
    }
  }
  return out;
}

/** The source of the bootstrap module. Names are validated; data goes in as JSON literals. */
export function generateLocalBootstrap(input: LocalBootstrapInput): string {
  if (!MODULE_NAME.test(input.innerModule)) throw new Error(`invalid module name ${input.innerModule}`);
  for (const name of [...input.classes, ...input.bindings.map((b) => b.className)]) {
    if (!IDENTIFIER.test(name)) throw new Error(`invalid class name ${name}`);
  }
  const config = JSON.stringify({
    bindings: input.bindings,
    removed: input.removed,
    d1: input.d1 ?? [],
    kv: input.kv ?? [],
    r2: input.r2 ?? [],
  });
  const protocol = JSON.stringify({
    origin: GATEWAY_ORIGIN,
    opHeader: OP_HEADER,
    targetHeader: TARGET_HEADER,
    propsKey: FACET_PROPS_KEY,
  });
  const classes = [...new Set(input.classes)]
    .map(
      (name) => `export class ${name} extends app.${name} {
  constructor(ctx, env) {
    localState(ctx, env);
    super(ctx, localEnv(env, null));
  }
  // Called by the host object when the alarm it holds for this object fires (facets cannot set
  // alarms); the host measures the call, so the alarm is metered as "alarm" (host-meter.ts).
  async __shipyardAlarm(info) {
    if (typeof this.alarm !== "function") throw new TypeError("${name} has no alarm() handler, but an alarm was set");
    return this.alarm(info);
  }
}`,
    )
    .join("\n");
  return `// Generated by Shipyard's local platform. Do not edit.
import * as app from ${JSON.stringify(`./${input.innerModule}`)};
import { d1Database } from ${JSON.stringify(`./${D1_SHIM_MODULE}`)};
import { kvNamespace } from ${JSON.stringify(`./${KV_SHIM_MODULE}`)};
import { r2Bucket } from ${JSON.stringify(`./${R2_SHIM_MODULE}`)};

const CONFIG = ${config};
const PROTOCOL = ${protocol};
const GATEWAY = "__SHIPYARD_GATEWAY";

// Deterministic 64-hex ids for idFromName (platform/local/local-bootstrap.ts objectKeyOf).
const nameToHex = ${objectKeyOf.toString()};

class LocalDurableObjectId {
  #hex;
  #name;
  constructor(hex, name) {
    this.#hex = hex;
    this.#name = name;
  }
  get name() {
    return this.#name;
  }
  toString() {
    return this.#hex;
  }
  equals(other) {
    return String(other) === this.#hex;
  }
}

// A JSON operation of the gateway (alarms): a fetch, which works at every compatibility date.
async function gatewayCall(gateway, op, body) {
  const response = await gateway.fetch(PROTOCOL.origin + "/" + op, {
    method: "POST",
    headers: { [PROTOCOL.opHeader]: op, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer && answer.error ? answer.error.message : "gateway " + op + " failed: " + response.status);
  return answer.value;
}

function stubFor(gateway, ns, id) {
  const key = id.toString();
  const target = JSON.stringify({ namespace: ns.namespace, className: ns.className, objectKey: key, name: id.name ?? null });
  const base = {
    id,
    name: id.name,
    fetch: (input, init) => {
      const request = new Request(input, init);
      const headers = new Headers(request.headers);
      headers.set(PROTOCOL.opHeader, "object");
      headers.set(PROTOCOL.targetHeader, target);
      return gateway.fetch(new Request(request, { headers }));
    },
  };
  return new Proxy(base, {
    get(object, prop) {
      if (typeof prop === "symbol" || prop in object) return object[prop];
      if (prop === "then") return undefined;
      return (...args) => {
        if (typeof gateway.objectCall !== "function") {
          throw new TypeError("Durable Object RPC needs compatibility_date 2024-04-03 or later (or the rpc flag)");
        }
        return gateway.objectCall(ns.namespace, ns.className, key, prop, args, id.name ?? null);
      };
    },
  });
}

function namespaceFor(gateway, ns) {
  const namespace = {
    idFromName: (name) => new LocalDurableObjectId(nameToHex(String(name)), String(name)),
    idFromString: (hex) => {
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError("Invalid Durable Object ID: " + hex);
      return new LocalDurableObjectId(hex, undefined);
    },
    newUniqueId: () => {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      return new LocalDurableObjectId([...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""), undefined);
    },
    get: (id) => stubFor(gateway, ns, id),
    getByName: (name) => stubFor(gateway, ns, namespace.idFromName(name)),
    jurisdiction: () => namespace,
  };
  return namespace;
}

// The env the tenant sees. \`touched\` collects removed bindings the code tried to read.
function localEnv(env, touched) {
  const gateway = env[GATEWAY];
  const out = {};
  for (const [key, value] of Object.entries(env)) if (key !== GATEWAY) out[key] = value;
  for (const ns of CONFIG.bindings) out[ns.binding] = namespaceFor(gateway, ns);
  for (const name of CONFIG.d1) if (env[name]) out[name] = d1Database(env[name]);
  for (const name of CONFIG.kv) if (env[name]) out[name] = kvNamespace(env[name]);
  for (const name of CONFIG.r2) if (env[name]) out[name] = r2Bucket(env[name]);
  return new Proxy(out, {
    get(target, prop) {
      if (touched && typeof prop === "string" && CONFIG.removed.includes(prop)) touched.add(prop);
      return target[prop];
    },
  });
}

// The facet's ctx as the tenant's object would see it on Cloudflare. Its id: the facet's own is the
// host's (with Shipyard's internal name), so it becomes the id the tenant's stubs use, with the
// name it was reached by. Its alarms: facets cannot set alarms ("Facets currently cannot set
// alarms.", not catchable inside the facet), so the storage's alarm methods go to the host
// object, which holds the real alarm. The facet learns its address from the props the host gave it.
function localState(ctx, env) {
  const self = ctx.props && ctx.props[PROTOCOL.propsKey];
  if (!self) return;
  const gateway = env[GATEWAY];
  Object.defineProperty(ctx, "id", {
    value: new LocalDurableObjectId(self.objectKey, self.name ?? undefined),
    configurable: true,
  });
  const address = { namespace: self.namespace, objectKey: self.objectKey };
  const call = (op, extra) => gatewayCall(gateway, op, { ...address, ...extra });
  const define = (name, fn) => Object.defineProperty(ctx.storage, name, { value: fn, configurable: true, writable: true });
  define("getAlarm", async () => call("alarm.get", {}));
  define("setAlarm", async (scheduledTime) => {
    const time = scheduledTime instanceof Date ? scheduledTime.getTime() : scheduledTime;
    if (typeof time !== "number" || !Number.isFinite(time)) {
      throw new TypeError("setAlarm() expects a number of milliseconds since the epoch or a Date");
    }
    await call("alarm.set", { time });
  });
  define("deleteAlarm", async () => {
    await call("alarm.delete", {});
  });
  // A transaction's handle has the same alarm methods: they go to the host too (outside the
  // transaction's atomicity, which the host's alarm cannot join).
  const transaction = ctx.storage.transaction.bind(ctx.storage);
  const alarms = { getAlarm: ctx.storage.getAlarm, setAlarm: ctx.storage.setAlarm, deleteAlarm: ctx.storage.deleteAlarm };
  define("transaction", (closure) =>
    transaction((txn) =>
      closure(
        new Proxy(txn, {
          get(target, prop) {
            if (typeof prop === "string" && prop in alarms) return alarms[prop];
            const value = Reflect.get(target, prop);
            return typeof value === "function" ? value.bind(target) : value;
          },
        }),
      ),
    ),
  );
}

function bindingRemoved(touched) {
  const names = [...touched];
  return Response.json(
    {
      error: {
        code: "do_binding_removed",
        message: "this route needs Durable Object binding(s) " + names.join(", ") + ", removed by usage enforcement",
        details: {
          bindings: names,
          hint: "the project used more Durable Object wall time than its budget; redeploy or ask on-call to restore the bindings",
        },
      },
    },
    { status: 503, headers: { "Retry-After": "300" } },
  );
}

async function serve(touched, call) {
  try {
    const response = await call();
    if (touched.size > 0 && response.status >= 500) return bindingRemoved(touched);
    return response;
  } catch (error) {
    if (touched.size > 0) return bindingRemoved(touched);
    throw error;
  }
}

function noFetchHandler() {
  return new Response("no fetch handler", { status: 501 });
}

const inner = app.default;
const touchedOf = new WeakMap();

// A class default export (a WorkerEntrypoint): the runtime constructs it per request, so the
// removed-binding tracking lives per instance.
const ClassEntry =
  typeof inner === "function"
    ? class extends inner {
        constructor(ctx, env) {
          const touched = new Set();
          super(ctx, localEnv(env, touched));
          touchedOf.set(this, touched);
        }
        async fetch(request) {
          if (typeof super.fetch !== "function") return noFetchHandler();
          return serve(touchedOf.get(this) ?? new Set(), () => super.fetch(request));
        }
      }
    : null;

export default ClassEntry ?? {
  async fetch(request, env, ctx) {
    if (!inner || typeof inner.fetch !== "function") return noFetchHandler();
    const touched = new Set();
    const tenantEnv = localEnv(env, touched);
    return serve(touched, () => inner.fetch(request, tenantEnv, ctx));
  },
};

export const ${STARTUP_ENTRYPOINT} = {
  fetch() {
    return new Response(null, { status: 204 });
  },
};

${classes}
`;
}
