import type { PlatformError } from "./local-platform.do.ts";
import type { Result } from "../../lib/result.ts";
import { bindAssets, clearAssets, storeAssets } from "../assets-binding.ts";
import { localPlatform } from "./local-runtime.ts";
import {
  type ScriptBinding,
  type ScriptHost,
  ScriptHostError,
  type ScriptInfo,
  type UploadRequest,
  type UploadResult,
} from "../script-host.ts";

function unwrap<T>(result: Result<T, PlatformError>): T {
  if (result.ok) return result.value;
  throw new ScriptHostError(result.error.code, result.error.message, { liveTag: result.error.liveTag });
}

/**
 * The ScriptHost of the local platform (the default for dev, tests and the demo): each script is a
 * `LocalPlatform` Durable Object that keeps its versions and enforces the real API's rules, and
 * its Worker runs for real on local workerd (platform/local/local-runtime.ts).
 */
export class LocalScriptHost implements ScriptHost {
  readonly #env: Env;

  constructor(env: Env) {
    this.#env = env;
  }

  async upload(request: UploadRequest): Promise<UploadResult> {
    // Asset files go to the script's TenantAssets store first (by hash), not through LocalPlatform.
    const { assets, ...code } = request;
    const index = assets === undefined ? null : await storeAssets(this.#env, request.scriptName, assets);
    const result = unwrap(await localPlatform(this.#env, request.scriptName).upload(code));
    if (assets !== undefined && index !== null) {
      await bindAssets(this.#env, request.scriptName, result.versionId, index, assets, request.compatibilityDate);
    }
    return result;
  }

  async getScript(scriptName: string): Promise<ScriptInfo | null> {
    return localPlatform(this.#env, scriptName).getScript();
  }

  async setBindings(scriptName: string, bindings: ScriptBinding[]): Promise<void> {
    unwrap(await localPlatform(this.#env, scriptName).setBindings(bindings));
  }

  async deleteScript(scriptName: string): Promise<void> {
    await localPlatform(this.#env, scriptName).deleteScript();
    await clearAssets(this.#env, scriptName);
  }
}
