import { exports } from "cloudflare:workers";
import { describeError } from "../../lib/log.ts";
import { type Result, err, ok } from "../../lib/result.ts";
import type { UploadRequest } from "../script-host.ts";
import { STARTUP_ENTRYPOINT } from "./local-bootstrap.ts";
import { workerCode } from "./local-runtime.ts";

/** What the startup check saw. */
export interface StartupCheck {
  /** Who checked: the local runtime here, Cloudflare's upload validation in production. */
  checkedBy: "local_runtime" | "cloudflare_upload";
  /** How long loading took, in ms (0 when Cloudflare checks at upload). */
  ms: number;
}

/** Why a version does not start: the runtime's own message (a top-level throw, bad wasm, a missing module). */
export interface StartupFailure {
  message: string;
}

/**
 * Loads a version that is not yet current in a throwaway dynamic Worker (Worker Loader) and
 * starts it: every module is evaluated, nothing of the tenant's runs beyond its top level (the
 * bootstrap's startup entrypoint answers 204 by itself). This is what Cloudflare's upload
 * validation does before a version can go live, so a version that cannot start never replaces
 * the one serving.
 */
export async function checkStartupLocally(
  env: Env,
  request: UploadRequest,
  classes: readonly string[],
): Promise<Result<StartupCheck, StartupFailure>> {
  const started = Date.now();
  let code: WorkerLoaderWorkerCode;
  try {
    code = workerCode(
      {
        mainModule: request.mainModule,
        modules: request.modules,
        compatibilityDate: request.compatibilityDate,
        compatibilityFlags: request.compatibilityFlags ?? [],
        bindings: request.bindings,
        removed: [],
        classes: Object.fromEntries(classes.map((name) => [name, name])),
      },
      // A gateway that belongs to no version: top-level code cannot do I/O, so nothing calls it.
      exports.TenantGateway({
        props: { script: request.scriptName, versionId: "startup-check", versionKey: "startup-check", generation: -1 },
      }),
    );
  } catch (error) {
    return err({ message: describeError(error) });
  }
  try {
    const response = await env.LOADER.load(code).getEntrypoint(STARTUP_ENTRYPOINT).fetch("http://startup.check/");
    await response.body?.cancel();
    if (response.status !== 204) return err({ message: `startup entrypoint answered ${response.status}` });
  } catch (error) {
    // The runtime's own text ("Failed to start Worker: Uncaught Error: … at src/x.js:1:7").
    return err({ message: error instanceof Error ? error.message : describeError(error) });
  }
  return ok({ checkedBy: "local_runtime", ms: Date.now() - started });
}
