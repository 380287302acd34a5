import { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import { LocalScriptHost } from "./local/local-script-host.ts";
import type { ScriptHost } from "./script-host.ts";

/**
 * The ScriptHost for this deployment: `SCRIPT_HOST=cloudflare` uses the Workers for Platforms API
 * (needs CF_ACCOUNT_ID, CF_DISPATCH_NAMESPACE and the CF_API_TOKEN secret); anything else the
 * local platform, so dev, tests and the demo need no account.
 */
export function scriptHost(env: Env): ScriptHost {
  if (env.SCRIPT_HOST === "cloudflare") {
    if (!env.CF_ACCOUNT_ID || !env.CF_API_TOKEN) {
      throw new Error("SCRIPT_HOST=cloudflare needs CF_ACCOUNT_ID and the CF_API_TOKEN secret");
    }
    return new CloudflareScriptHost({
      accountId: env.CF_ACCOUNT_ID,
      namespace: env.CF_DISPATCH_NAMESPACE,
      apiToken: env.CF_API_TOKEN,
    });
  }
  return new LocalScriptHost(env);
}
