/**
 * The CLI's view of the API: the shared typed client (lib/api-client.ts) with the base URL and
 * admin token from flags or the environment (local defaults), and a hint on how to reach a stack.
 */
import { ApiClient } from "../lib/api-client.ts";

export { ApiClient, ApiError, ConnectionError, toApiError } from "../lib/api-client.ts";

/** Local defaults (`npm run dev`, .dev.vars.example). */
export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_ADMIN_TOKEN = "dev-admin-token";

/** The client for the flags and environment given. */
export function apiFrom(values: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): ApiClient {
  return new ApiClient({
    baseUrl: values.url ?? (env.SHIPYARD_URL || DEFAULT_URL),
    token: values.token ?? (env.SHIPYARD_ADMIN_TOKEN || DEFAULT_ADMIN_TOKEN),
    unreachableHint: "is `npm run dev` running, or SHIPYARD_URL set?",
  });
}
