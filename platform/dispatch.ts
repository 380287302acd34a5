/**
 * Production tenant traffic: a request for a project goes to the project's user Worker in the
 * Workers for Platforms dispatch namespace (`env.DISPATCHER`, a `[[dispatch_namespaces]]` binding
 * that `npm run deploy` adds: scripts/lib/production-config.ts), with `limits` on every invocation.
 *
 * What the dispatch namespace does, and how each case is read here (docs/production.md):
 *  - `DISPATCHER.get(name, args, options)` never throws for an unknown script; the returned
 *    Fetcher's `fetch()` rejects with `Error("Worker not found.")` (workerd
 *    src/workerd/api/http.c++, the "NOSENTRY script not found" mapping; cloudflare/workerd#5263;
 *    the docs' dynamic-dispatch example matches `e.message.startsWith("Worker not found")`).
 *  - A user Worker past its custom limits "will immediately throw an exception" (docs:
 *    workers-for-platforms/configuration/custom-limits): the rejection carries the runtime's text,
 *    "Worker exceeded CPU time limit." or "Too many subrequests by single Worker invocation.".
 *  - Any other uncaught tenant exception also rejects `fetch()`; a tenant's own 4xx/5xx answer is
 *    a response and passes through untouched.
 *  - A Durable Object binding removed by enforcement is simply absent from the tenant's env, so
 *    the tenant's code throws (`env.COUNTER` is undefined) or answers 5xx. Unlike the local
 *    platform, which notices the read itself (platform/local/local-bootstrap.ts), the dispatcher
 *    cannot see inside the tenant: it reads the removed bindings from D1 (`do_enforcement`) when,
 *    and only when, the invocation failed, and then answers `binding_removed`. Routes that need no
 *    Durable Object succeed and are never looked up.
 */
import { z } from "zod";
import { describeError, log } from "../lib/log.ts";
import type { Result } from "../lib/result.ts";
import { TENANT_LIMITS } from "./script-host.ts";

/** The text a dispatch namespace's Fetcher rejects with when the script does not exist. */
export const WORKER_NOT_FOUND = "Worker not found.";
/** Runtime texts of an invocation stopped by its limits (docs: Workers limits; seen in Workers logs). */
export const CPU_LIMIT_EXCEEDED = "Worker exceeded CPU time limit.";
export const SUBREQUEST_LIMIT_EXCEEDED = "Too many subrequests by single Worker invocation.";

export type DispatchFailure =
  | { reason: "not_found" }
  | { reason: "binding_removed"; bindings: string[] }
  | { reason: "limit_exceeded"; limit: "cpu_ms" | "subrequests"; value: number; message: string }
  | { reason: "exception"; message: string };

const RemovedSchema = z.array(z.object({ name: z.string() }));

/**
 * Runs `request` on project `project`'s user Worker in `dispatcher`. The tenant's own response
 * (any status) is `ok`; a failure is classified as above. `db` is read only when the invocation
 * failed, for the bindings enforcement removed.
 */
export async function dispatchToNamespace(
  dispatcher: DispatchNamespace,
  db: D1Database,
  project: string,
  request: Request,
): Promise<Result<Response, DispatchFailure>> {
  const limits = { cpuMs: TENANT_LIMITS.cpuMs, subRequests: TENANT_LIMITS.subRequests };
  // No `outbound` argument: Shipyard binds no outbound Worker to the namespace (see docs/production.md).
  let response: Response;
  try {
    // Inside the try: on Cloudflare get() is lazy, but a binding without a namespace behind it
    // (wrangler dev: "Binding DISPATCHER needs to be run remotely") throws from get() itself.
    response = await dispatcher.get(project, {}, { limits }).fetch(request);
  } catch (error) {
    const message = describeError(error);
    if (error instanceof Error && error.message.startsWith("Worker not found")) {
      return { ok: false, error: { reason: "not_found" } };
    }
    const removed = await removedBindings(db, project);
    if (removed.length > 0) return { ok: false, error: { reason: "binding_removed", bindings: removed } };
    const text = error instanceof Error ? error.message : String(error);
    if (text.startsWith("Worker exceeded CPU time limit")) {
      return { ok: false, error: { reason: "limit_exceeded", limit: "cpu_ms", value: limits.cpuMs, message: text } };
    }
    if (text.startsWith("Too many subrequests")) {
      return {
        ok: false,
        error: { reason: "limit_exceeded", limit: "subrequests", value: limits.subRequests, message: text },
      };
    }
    log.warn("tenant_exception", { project, error: message, host: "cloudflare" });
    return { ok: false, error: { reason: "exception", message } };
  }
  if (response.status >= 500) {
    const removed = await removedBindings(db, project);
    if (removed.length > 0) {
      // The tenant's own 5xx body is not needed: the 503 replaces it, as the local platform does.
      await response.body?.cancel();
      return { ok: false, error: { reason: "binding_removed", bindings: removed } };
    }
  }
  return { ok: true, value: response };
}

/** Names of the Durable Object bindings enforcement removed from `project` (D1 `do_enforcement`). */
async function removedBindings(db: D1Database, project: string): Promise<string[]> {
  let row: { removed_bindings: string } | null;
  try {
    row = await db
      .prepare("SELECT removed_bindings FROM do_enforcement WHERE project_id = ?")
      .bind(project)
      .first<{ removed_bindings: string }>();
  } catch (error) {
    // The tenant's failure is still answered (as its own exception) when D1 cannot say more.
    log.warn("dispatch_enforcement_lookup_failed", { project, error: describeError(error) });
    return [];
  }
  if (row === null) return [];
  let json: unknown;
  try {
    json = JSON.parse(row.removed_bindings);
  } catch {
    return [];
  }
  const parsed = RemovedSchema.safeParse(json);
  return parsed.success ? parsed.data.map((binding) => binding.name) : [];
}
