import { assetsBinding } from "../assets-binding.ts";
import { plainBindingValue } from "../bindings.ts";
import type { LocalPlatform, VersionCode } from "./local-platform.do.ts";
import { LOCAL_BOOTSTRAP_MODULE, generateLocalBootstrap } from "./local-bootstrap.ts";
import { toWorkerLoaderModules } from "../modules.ts";

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
 * uploaded modules, and an env holding exactly the version's current bindings — plain text as
 * strings, Analytics Engine and the Durable Object namespaces through the gateway.
 */
export function workerCode(code: VersionCode, gateway: Fetcher, assets?: Fetcher): WorkerLoaderWorkerCode {
  const env: Record<string, unknown> = { __SHIPYARD_GATEWAY: gateway };
  const durableObjects = [];
  const analytics = [];
  for (const binding of code.bindings) {
    switch (binding.type) {
      case "plain_text":
      case "json":
      case "secret_text":
      case "assets":
        env[binding.name] = plainBindingValue(binding, assets);
        break;
      case "analytics_engine":
        // The bootstrap's dataset writes through the gateway's `usage` operation, which forwards
        // points into Shipyard's own telemetry pipeline.
        analytics.push(binding.name);
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
    analytics,
    removed: code.removed,
  });
  return {
    compatibilityDate: code.compatibilityDate,
    compatibilityFlags: code.compatibilityFlags,
    mainModule: LOCAL_BOOTSTRAP_MODULE,
    modules: {
      ...MISSING_BUILTINS,
      [LOCAL_BOOTSTRAP_MODULE]: { js: bootstrap },
      ...toWorkerLoaderModules(code.modules),
    },
    env,
    // Tenant code gets no network of its own locally (production's dispatch namespace decides there).
    globalOutbound: null,
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
    );
  });
}
