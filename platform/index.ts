import { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import { LocalScriptHost } from "./local/local-script-host.ts";
import type { StartupCheck, StartupFailure } from "./local/startup-check.ts";
import { startupCheckInRuntime } from "./local/tenant-dispatch.ts";
import type { ScriptHost, UploadRequest } from "./script-host.ts";
import type { Result } from "../lib/result.ts";

/**
 * The ScriptHost for this deployment: `SCRIPT_HOST=cloudflare` uses the Workers for Platforms API
 * (needs CF_ACCOUNT_ID, CF_DISPATCH_NAMESPACE, SHIPYARD_WORKER_NAME and the CF_API_TOKEN secret); anything else the
 * local platform, so dev, tests and the demo need no account.
 */
export function scriptHost(env: Env): ScriptHost {
  if (env.SCRIPT_HOST === "cloudflare") {
    if (!env.CF_ACCOUNT_ID || !env.CF_API_TOKEN || !env.SHIPYARD_WORKER_NAME) {
      throw new Error("SCRIPT_HOST=cloudflare needs CF_ACCOUNT_ID, SHIPYARD_WORKER_NAME and the CF_API_TOKEN secret");
    }
    return new CloudflareScriptHost({
      accountId: env.CF_ACCOUNT_ID,
      namespace: env.CF_DISPATCH_NAMESPACE,
      apiToken: env.CF_API_TOKEN,
      // Every upload names Shipyard's Worker as its tail consumer (metering, platform/tail-usage.ts).
      tailConsumer: env.SHIPYARD_WORKER_NAME,
    });
  }
  return new LocalScriptHost(env);
}

/**
 * Whether a version starts, before it replaces the one serving (the deploy's "check startup"
 * step). Locally the version is loaded and started in a throwaway dynamic Worker, in the tenant
 * runtime (process B, never the control plane: a top level that loops stalls B only); on Cloudflare
 * the upload itself validates the script (a top-level throw, bad wasm or a missing module fails
 * the upload, code 10021, and the live version stays), so there is nothing to run before it.
 */
export async function checkStartup(
  env: Env,
  request: UploadRequest,
  classes: readonly string[],
): Promise<Result<StartupCheck, StartupFailure>> {
  if (env.SCRIPT_HOST === "cloudflare") return { ok: true, value: { checkedBy: "cloudflare_upload", ms: 0 } };
  const checked = await startupCheckInRuntime(env.TENANT_RUNTIME, request, classes);
  if (!checked.ok && "reason" in checked.error && checked.error.reason === "unavailable") {
    // The runtime is restarting (its watchdog, or a crash): the step's retry checks again.
    throw new Error(checked.error.message);
  }
  return checked;
}
