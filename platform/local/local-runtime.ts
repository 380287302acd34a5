import { exports } from "cloudflare:workers";
import { assetsBinding } from "../assets-binding.ts";
import { d1Binding } from "../d1-binding.ts";
import { D1_SHIM_MODULE, D1_SHIM_SOURCE } from "./d1-shim.ts";
import { kvBinding } from "../kv-binding.ts";
import { KV_SHIM_MODULE, KV_SHIM_SOURCE } from "./kv-shim.ts";
import { r2Binding } from "../r2-binding.ts";
import { R2_SHIM_MODULE, R2_SHIM_SOURCE } from "./r2-shim.ts";
import { plainBindingValue } from "../bindings.ts";
import type { LocalPlatform, VersionCode } from "./local-platform.do.ts";
import { LOCAL_BOOTSTRAP_MODULE, generateLocalBootstrap } from "./local-bootstrap.ts";
import { toWorkerLoaderModules } from "../modules.ts";
import { TENANT_LIMITS } from "../script-host.ts";

/**
 * Built-in modules a dynamic Worker lacks, given as modules of the same name (which take their
 * place): `cloudflare:email` imports `cloudflare-internal:email`, absent from Worker Loader isolates,
 * so a tenant importing it (the agents SDK does) would not even start locally. `EmailMessage` is
 * only a value holder; sending needs a `send_email` binding, which the platform refuses up front.
 */
const MISSING_BUILTINS: Record<string, WorkerLoaderModule> = {
  "cloudflare:email": {
    js: `// Shipyard's local platform: dynamic Workers have no cloudflare:email.
export class EmailMessage {
  constructor(from, to, raw) {
    this.from = from;
    this.to = to;
    this.raw = raw;
  }
}
`,
  },
};

/** Props of the gateway entrypoint a tenant isolate is given: who it is and which version it runs. */
export interface GatewayProps {
  script: string;
  versionId: string;
  versionKey: string;
  generation: number;
}

/** The name of the LocalPlatform object of a script. */
export function platformObjectName(script: string): string {
  return `script:${script}`;
}

export function localPlatform(env: Env, script: string): DurableObjectStub<LocalPlatform> {
  return env.LOCAL_PLATFORM.getByName(platformObjectName(script));
}

/** Makes a gateway stub for a version (a loopback entrypoint carrying its props). */
export type GatewayFactory = (props: GatewayProps) => Fetcher;

/**
 * Worker Loader input for a version: the generated bootstrap as main module in front of the
 * uploaded modules, and an env holding exactly the version's declared bindings — plain text as
 * strings, the Durable Object namespaces through the gateway — and no platform binding.
 */
export function workerCode(
  code: VersionCode,
  gateway: Fetcher,
  assets?: Fetcher,
  tail?: Fetcher,
): WorkerLoaderWorkerCode {
  const env: Record<string, unknown> = { __SHIPYARD_GATEWAY: gateway };
  const durableObjects = [];
  const d1 = [];
  const kv = [];
  const r2 = [];
  for (const binding of code.bindings) {
    switch (binding.type) {
      case "plain_text":
      case "json":
      case "secret_text":
      case "assets":
        env[binding.name] = plainBindingValue(binding, assets);
        break;
      case "analytics_engine":
        // Shipyard's metering dataset (USAGE): not the tenant's to write. Locally the host object
        // measures usage itself (platform/local/host-meter.ts), so the tenant's env has no such
        // binding and the upload's wrapper writes nothing.
        break;
      case "d1":
        // A TenantD1Binding stub; the bootstrap wraps it in the D1 API (platform/local/d1-shim.ts).
        env[binding.name] = d1Binding({ databaseId: binding.id });
        d1.push(binding.name);
        break;
      case "kv_namespace":
        // A TenantKVBinding stub; the bootstrap wraps it in the KV API (platform/local/kv-shim.ts).
        env[binding.name] = kvBinding({ namespaceId: binding.namespace_id });
        kv.push(binding.name);
        break;
      case "r2_bucket":
        // A TenantR2Binding stub; the bootstrap wraps it in the R2 API (platform/local/r2-shim.ts).
        env[binding.name] = r2Binding({ bucket: binding.bucket_name });
        r2.push(binding.name);
        break;
      case "durable_object_namespace": {
        const namespace = code.classes[binding.class_name];
        if (namespace !== undefined) {
          durableObjects.push({ binding: binding.name, className: binding.class_name, namespace });
        }
        break;
      }
    }
  }
  const bootstrap = generateLocalBootstrap({
    innerModule: code.mainModule,
    classes: Object.keys(code.classes),
    bindings: durableObjects,
    removed: code.removed,
    d1,
    kv,
    r2,
  });
  return {
    compatibilityDate: code.compatibilityDate,
    compatibilityFlags: code.compatibilityFlags,
    mainModule: LOCAL_BOOTSTRAP_MODULE,
    modules: {
      ...MISSING_BUILTINS,
      [LOCAL_BOOTSTRAP_MODULE]: { js: bootstrap },
      [D1_SHIM_MODULE]: { js: D1_SHIM_SOURCE },
      [KV_SHIM_MODULE]: { js: KV_SHIM_SOURCE },
      [R2_SHIM_MODULE]: { js: R2_SHIM_SOURCE },
      ...toWorkerLoaderModules(code.modules),
    },
    env,
    // Cloudflare's runtime ends an invocation past these; local workerd accepts them but does not
    // enforce them (measured, docs/tenant-isolation.md).
    limits: { cpuMs: TENANT_LIMITS.cpuMs, subRequests: TENANT_LIMITS.subRequests },
    // Tenant code gets no network of its own locally (production's dispatch namespace decides there).
    globalOutbound: null,
    // The runtime's own record of each invocation (platform/local/usage-tail.ts meters WebSocket events).
    ...(tail === undefined ? {} : { tails: [tail] }),
  };
}

/**
 * The Worker Loader stub running `current`. The loader caches isolates by `versionKey`, which
 * changes with every upload and settings change, so a stale isolate is never reused.
 */
export function loadVersion(env: Env, current: GatewayProps, gateway: GatewayFactory): WorkerStub {
  return env.LOADER.get(current.versionKey, async () => {
    const code = await localPlatform(env, current.script).code(current.versionId);
    if (!code) throw new Error(`version ${current.versionId} of ${current.script} is no longer current`);
    const { script, versionId, versionKey, generation } = current;
    return workerCode(
      code,
      gateway({ script, versionId, versionKey, generation }),
      assetsBinding({ script, versionId }),
      exports.UsageTail({ props: { script } }),
    );
  });
}
