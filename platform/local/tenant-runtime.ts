import { WorkerEntrypoint, exports } from "cloudflare:workers";
import { z } from "zod";
import { describeError, log } from "../../lib/log.ts";
import type { Result } from "../../lib/result.ts";
import type { UploadRequest } from "../script-host.ts";
import { parseJsonHeader } from "./gateway-protocol.ts";
import { type GatewayProps, loadVersion } from "./local-runtime.ts";
import { type StartupCheck, type StartupFailure, checkStartupLocally } from "./startup-check.ts";

/**
 * The tenant runtime: where tenant code runs on the local platform. Under `npm run dev`, the demo,
 * bench and load it is a second workerd process (process B, `wrangler.tenants.toml`, entry
 * `tenants.ts`), so a tenant that loops forever or exhausts its heap stalls or crashes B, never the
 * control plane's queues, shards and acknowledged data (docs/tenant-isolation.md). The control
 * plane reaches it through the `TENANT_RUNTIME` service binding (wrangler's dev registry across
 * the two `wrangler dev` processes); in the vitest suite that binding points at this same
 * entrypoint inside the one workerd, so both run the same dispatch code.
 */

/** On a request from the control plane to the runtime: which version serves it ({@link GatewayProps} as JSON). */
export const RUNTIME_TARGET_HEADER = "x-shipyard-tenant-target";
/**
 * On every answer of the runtime: marks it as the runtime's (the tenant's answer or the runtime's
 * own error), so the control plane can tell it from the dev registry's own 503 when process B is
 * not there. Its value is the time spent in the runtime (ms). The control plane strips it (and
 * drops a client's copy), and reports the time as `Server-Timing`.
 */
export const RUNTIME_ANSWER_HEADER = "x-shipyard-tenant-runtime";

const GatewayPropsSchema = z.object({
  script: z.string().min(1),
  versionId: z.string().min(1),
  versionKey: z.string().min(1),
  generation: z.number().int(),
});

function runtimeError(status: number, code: string, message: string, started: number): Response {
  return marked(Response.json({ error: { code, message } }, { status }), started);
}

/** `response` with the runtime's mark, whose value is the ms spent here (a 101 keeps its WebSocket). */
function marked(response: Response, started: number): Response {
  const headers = new Headers(response.headers);
  headers.set(RUNTIME_ANSWER_HEADER, String(performance.now() - started));
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
    webSocket: response.webSocket,
  });
}

/** The runtime's entrypoint, reachable only through a service binding (not the process's HTTP port). */
export class TenantRuntime extends WorkerEntrypoint<Env> {
  /** Runs one request of a tenant on `RUNTIME_TARGET_HEADER`'s version (a fetch, so a 101 with its WebSocket comes back). */
  override async fetch(request: Request): Promise<Response> {
    const started = performance.now();
    const target = GatewayPropsSchema.safeParse(parseJsonHeader(request.headers.get(RUNTIME_TARGET_HEADER)));
    if (!target.success)
      return runtimeError(400, "bad_runtime_target", `missing or bad ${RUNTIME_TARGET_HEADER}`, started);
    const headers = new Headers(request.headers);
    headers.delete(RUNTIME_TARGET_HEADER);
    const current: GatewayProps = target.data;
    const worker = loadVersion(this.env, current, (props) => exports.TenantGateway({ props }));
    try {
      return marked(await worker.getEntrypoint().fetch(new Request(request, { headers })), started);
    } catch (error) {
      log.warn("tenant_exception", {
        project: current.script,
        version_id: current.versionId,
        error: describeError(error),
      });
      return runtimeError(500, "tenant_exception", `the project's Worker threw: ${describeError(error)}`, started);
    }
  }

  /** The deploy's startup check (platform/local/startup-check.ts), run here: top-level tenant code never runs in the control plane. */
  async startupCheck(request: UploadRequest, classes: string[]): Promise<Result<StartupCheck, StartupFailure>> {
    return checkStartupLocally(this.env, request, classes);
  }
}
