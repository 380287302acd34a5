/**
 * A Workers for Platforms dispatch namespace binding double (`DispatchNamespace`), for tests inside
 * workerd. It serves the scripts uploaded to the fake Cloudflare API (test/fake-cloudflare-api), so
 * one test can deploy with the real client and then dispatch to what it deployed, and it behaves
 * like the real binding where Shipyard depends on it:
 *  - `get(name, args, options)` never throws; the Fetcher's `fetch()` rejects with
 *    `Error("Worker not found.")` for a script the namespace does not hold (workerd
 *    src/workerd/api/http.c++; cloudflare/workerd#5263);
 *  - each invocation runs the stored version for real, in a fresh dynamic Worker (Worker Loader),
 *    with the stored `plain_text`/`json`/`secret_text` bindings as its env; a binding the settings
 *    no longer carry (removed by enforcement) is absent, as on Cloudflare; the double runs no
 *    Durable Objects, so a Durable Object binding is absent even while it is bound (a route that
 *    uses one fails either way: what differs is whether D1 says enforcement removed it);
 *  - `options.limits.subRequests` is enforced: the tenant's `fetch` counts, and the call past the
 *    limit throws the runtime's "Too many subrequests by single Worker invocation." (the double has
 *    no outbound Worker: outbound requests under the limit answer 204 without leaving workerd);
 *  - CPU time cannot be measured here (workerd enforces no `limits`: platform/local/tenant-limits.test.ts),
 *    so `exceedCpu(name)` makes that script's next invocation throw the runtime's
 *    "Worker exceeded CPU time limit.", as a tenant over `limits.cpuMs` does.
 * An uncaught tenant exception rejects `fetch()` with the tenant's error, as dynamic dispatch does.
 */
import { z } from "zod";
import { CPU_LIMIT_EXCEEDED, SUBREQUEST_LIMIT_EXCEEDED, WORKER_NOT_FOUND } from "../platform/dispatch.ts";

const StoredSchema = z.object({
  main_module: z.string(),
  compatibility_date: z.string(),
  compatibility_flags: z.array(z.string()),
  bindings: z.array(z.looseObject({ type: z.string(), name: z.string() })),
  modules: z.array(z.object({ name: z.string(), content_type: z.string(), text: z.string().nullable() })),
});
type Stored = z.infer<typeof StoredSchema>;

const PRELUDE = "__dispatch_double.js";

/** One `get()` the code under test made: the script and the options it passed. */
export interface DispatchCall {
  name: string;
  options: DynamicDispatchOptions | undefined;
}

export class FakeDispatchNamespace implements DispatchNamespace {
  readonly calls: DispatchCall[] = [];
  readonly #cpuExceeded = new Set<string>();

  constructor(
    private readonly options: { apiBaseUrl: string; accountId: string; namespace: string; loader: WorkerLoader },
  ) {}

  /** The next invocation of `name` throws as a tenant over its CPU limit does. */
  exceedCpu(name: string): void {
    this.#cpuExceeded.add(name);
  }

  get(name: string, _args?: Record<string, unknown>, options?: DynamicDispatchOptions): Fetcher {
    this.calls.push({ name, options });
    const invoke = (input: RequestInfo | URL, init?: RequestInit) =>
      this.#invoke(name, new Request(input, init), options);
    return {
      fetch: invoke,
      connect: () => {
        throw new Error("the dispatch namespace double does not support connect()");
      },
    };
  }

  async #invoke(name: string, request: Request, options: DynamicDispatchOptions | undefined): Promise<Response> {
    const stored = await this.#stored(name);
    if (stored === null) throw new Error(WORKER_NOT_FOUND);
    if (this.#cpuExceeded.delete(name)) throw new Error(CPU_LIMIT_EXCEEDED);
    const modules: Record<string, string | WorkerLoaderModule> = {};
    for (const module of stored.modules) {
      if (module.text === null) throw new Error(`the dispatch namespace double cannot load ${module.content_type}`);
      modules[module.name] =
        module.content_type === "text/plain"
          ? { text: module.text }
          : module.content_type === "application/javascript"
            ? { cjs: module.text }
            : { js: module.text };
    }
    modules[PRELUDE] = prelude(stored.main_module, options?.limits?.subRequests);
    const worker = this.options.loader.load({
      compatibilityDate: stored.compatibility_date,
      compatibilityFlags: stored.compatibility_flags,
      mainModule: PRELUDE,
      modules,
      env: envOf(stored),
      ...(options?.limits === undefined ? {} : { limits: options.limits }),
      globalOutbound: null,
    });
    return worker.getEntrypoint().fetch(request);
  }

  async #stored(name: string): Promise<Stored | null> {
    const url = new URL(`/__control/scripts/${encodeURIComponent(name)}`, this.options.apiBaseUrl);
    url.searchParams.set("account", this.options.accountId);
    url.searchParams.set("namespace", this.options.namespace);
    const response = await fetch(url);
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw new Error(`fake Cloudflare API control: HTTP ${response.status}`);
    return StoredSchema.parse(await response.json());
  }
}

/** The version's env: vars and secrets as values (no Durable Object namespaces: see above). */
function envOf(stored: Stored): Record<string, unknown> {
  const env: Record<string, unknown> = {};
  for (const binding of stored.bindings) {
    if (binding.type === "plain_text" || binding.type === "secret_text") env[binding.name] = binding["text"];
    else if (binding.type === "json") env[binding.name] = binding["json"];
  }
  return env;
}

/** The entry module: counts the tenant's subrequests against the limit, then hands over to its main module. */
function prelude(mainModule: string, subRequests: number | undefined): string {
  return `import * as app from ${JSON.stringify(`./${mainModule}`)};
const LIMIT = ${JSON.stringify(subRequests ?? null)};
let made = 0;
globalThis.fetch = async () => {
  made += 1;
  if (LIMIT !== null && made > LIMIT) throw new Error(${JSON.stringify(SUBREQUEST_LIMIT_EXCEEDED)});
  return new Response(null, { status: 204 });
};
export default app.default;
`;
}
