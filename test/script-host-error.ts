import { ScriptHostError } from "../platform/script-host.ts";

/** The rejection of `promise`, which must be a ScriptHostError (tests of the ScriptHost clients). */
export async function hostError(promise: Promise<unknown>): Promise<ScriptHostError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ScriptHostError) return error;
    throw error;
  }
  throw new Error("expected a ScriptHostError, but the call succeeded");
}
