import { z } from "zod";
import { config } from "../lib/config.ts";
import { assertNever } from "../lib/result.ts";
import { routeTenantAssets } from "../platform/assets-binding.ts";
import { dispatchToNamespace } from "../platform/dispatch.ts";
import { localPlatform } from "../platform/local/local-runtime.ts";
import { RUNTIME_RETRY_AFTER_S, dispatchToRuntime } from "../platform/local/tenant-dispatch.ts";
import { ProjectIdSchema } from "../schemas/deploy.schema.ts";
import { HttpError, NotFound } from "./errors.ts";
import { pathParams } from "./http.ts";
import { forOwnOriginTenant, forShipyardOriginTenant, withoutSetCookie } from "./tenant-headers.ts";

const ParamsSchema = z.object({ project: ProjectIdSchema });

/**
 * `ANY /t/:project/*`: runs the project's current version under Shipyard's origin. The tenant sees
 * the path after `/t/<project>`; its root-relative and same-origin redirects (`Location: /x`) are
 * rewritten to stay below the prefix (`/t/<project>/x`). Absolute links inside bodies are not
 * rewritten: the project's own origin (`dispatchTenantHost`) is where those work.
 */
export async function dispatchTenant(request: Request, env: Env): Promise<Response> {
  const { project } = pathParams(request, ParamsSchema);
  const prefix = `/t/${project}`;
  const url = new URL(request.url);
  url.pathname = url.pathname.slice(prefix.length) || "/";
  const response = await runTenant(env, project, forShipyardOriginTenant(new Request(url, request)));
  return keepBelowPrefix(withoutSetCookie(response), prefix, url.origin);
}

/**
 * Host routing, before the API router: `http://<project>.<TENANT_HOST_SUFFIX>[:port]/…` (by default
 * `<project>.localhost`, which resolves to loopback) serves the project at its root, so its
 * redirects and absolute links work as on its own domain. Any other host is the API: undefined
 * lets the router carry on.
 */
export async function dispatchTenantHost(request: Request, env: Env): Promise<Response | undefined> {
  const project = tenantOfHost(new URL(request.url).hostname, config(env).TENANT_HOST_SUFFIX);
  if (project === null) return undefined;
  const parsed = ProjectIdSchema.safeParse(project);
  if (!parsed.success) throw new NotFound(`no project ${project}`);
  return runTenant(env, parsed.data, await forOwnOriginTenant(request, env));
}

/** The project a hostname names (`<project>.<suffix>`, one label), or null for any other host. */
export function tenantOfHost(hostname: string, suffix: string): string | null {
  const host = hostname.toLowerCase();
  const tail = `.${suffix.toLowerCase()}`;
  if (!host.endsWith(tail)) return null;
  const label = host.slice(0, -tail.length);
  return label.length > 0 && !label.includes(".") ? label : null;
}

/**
 * A redirect's `Location` rewritten to stay below `prefix`: root-relative (`/x`) and absolute on
 * the tenant's own origin (`http://host/x`) gain the prefix; other origins and relative paths
 * (which the browser resolves below the prefix already) are left alone.
 */
export function keepBelowPrefix(response: Response, prefix: string, origin: string): Response {
  const location = response.headers.get("location");
  if (location === null) return response;
  let rewritten: string | null = null;
  if (location.startsWith("/") && !location.startsWith("//")) {
    rewritten = prefix + location;
  } else if (URL.canParse(location)) {
    const target = new URL(location);
    if (target.origin === origin && !target.pathname.startsWith(`${prefix}/`) && target.pathname !== prefix) {
      rewritten = `${origin}${prefix}${target.pathname}${target.search}${target.hash}`;
    }
  }
  if (rewritten === null) return response;
  const out = new Response(response.body, response);
  out.headers.set("location", rewritten);
  return out;
}

async function runTenant(env: Env, project: string, request: Request): Promise<Response> {
  if (env.SCRIPT_HOST === "cloudflare") return runInNamespace(env, project, request);
  const current = await localPlatform(env, project).current();
  if (!current) throw new NotFound(`project ${project} has no deployed Worker`);
  // Static assets answer first, as Cloudflare's router does (unless run_worker_first).
  const fromAssets = await routeTenantAssets(env, project, current.versionId, request);
  if (fromAssets) return fromAssets;
  // The tenant's code runs in the tenant runtime (process B locally), behind a deadline: a tenant
  // that loops, crashes or exhausts its heap costs this request a 5xx, never the control plane.
  const answered = await dispatchToRuntime(env.TENANT_RUNTIME, current, request);
  if (answered.ok) return answered.value;
  const retryAfter = { "Retry-After": String(RUNTIME_RETRY_AFTER_S) };
  if (answered.error.reason === "timeout") {
    throw new HttpError(504, "tenant_timeout", answered.error.message, undefined, retryAfter);
  }
  throw new HttpError(503, "tenant_unavailable", answered.error.message, undefined, retryAfter);
}

/**
 * Production: the project's user Worker in the dispatch namespace (platform/dispatch.ts), with the
 * local platform's answers for its failures: 404 for a project without a script, 503
 * `do_binding_removed` with a hint when enforcement removed a binding and the invocation failed,
 * 500 for a tenant that threw or ran past its limits. The tenant's own responses pass through.
 */
async function runInNamespace(env: Env, project: string, request: Request): Promise<Response> {
  if (env.DISPATCHER === undefined) {
    throw new HttpError(
      501,
      "dispatch_not_configured",
      "SCRIPT_HOST is cloudflare but the Worker has no DISPATCHER binding; deploy with `npm run deploy`, which adds the dispatch namespace",
    );
  }
  const result = await dispatchToNamespace(env.DISPATCHER, env.DB, project, request);
  if (result.ok) return result.value;
  const failure = result.error;
  switch (failure.reason) {
    case "not_found":
      throw new NotFound(`project ${project} has no deployed Worker`);
    case "binding_removed":
      throw new HttpError(
        503,
        "do_binding_removed",
        `this route needs Durable Object binding(s) ${failure.bindings.join(", ")}, removed by usage enforcement`,
        {
          bindings: failure.bindings,
          hint: "the project used more Durable Object wall time than its budget; redeploy or ask on-call to restore the bindings",
        },
        { "Retry-After": "300" },
      );
    case "limit_exceeded":
      throw new HttpError(
        500,
        "tenant_limit_exceeded",
        `the project's Worker was stopped at its ${failure.limit === "cpu_ms" ? "CPU time" : "subrequest"} limit: ${failure.message}`,
        { limit: failure.limit, value: failure.value },
      );
    case "exception":
      throw new HttpError(500, "tenant_exception", `the project's Worker threw: ${failure.message}`);
    default:
      return assertNever(failure);
  }
}
