import { exports } from "cloudflare:workers";
import { z } from "zod";
import { describeError, log } from "../lib/log.ts";
import { routeTenantAssets } from "../platform/assets-binding.ts";
import { loadVersion, localPlatform } from "../platform/local-runtime.ts";
import { ProjectIdSchema } from "../schemas/deploy.schema.ts";
import { HttpError, NotFound } from "./errors.ts";
import { pathParams } from "./http.ts";

const ParamsSchema = z.object({ project: ProjectIdSchema });

/**
 * `ANY /t/:project/*`: runs the project's current version. Locally the Worker runs for real on
 * workerd through the Worker Loader (the tenant sees the path after `/t/<project>`); with
 * `SCRIPT_HOST=cloudflare` the request goes to the dispatch namespace instead.
 */
export async function dispatchTenant(request: Request, env: Env): Promise<Response> {
  const { project } = pathParams(request, ParamsSchema);
  const url = new URL(request.url);
  url.pathname = url.pathname.slice(`/t/${project}`.length) || "/";
  const forwarded = new Request(url, request);
  if (env.SCRIPT_HOST === "cloudflare") {
    throw new HttpError(501, "dispatch_not_configured", "bind a dispatch namespace to serve tenants from Cloudflare");
  }
  const current = await localPlatform(env, project).current();
  if (!current) throw new NotFound(`project ${project} has no deployed Worker`);
  // Static assets answer first, as Cloudflare's router does (unless run_worker_first).
  const fromAssets = await routeTenantAssets(env, project, current.versionId, forwarded);
  if (fromAssets) return fromAssets;
  const worker = loadVersion(env, current, (props) => exports.TenantGateway({ props }));
  try {
    return await worker.getEntrypoint().fetch(forwarded);
  } catch (error) {
    log.warn("tenant_exception", { project, version_id: current.versionId, error: describeError(error) });
    throw new HttpError(500, "tenant_exception", `the project's Worker threw: ${describeError(error)}`);
  }
}
