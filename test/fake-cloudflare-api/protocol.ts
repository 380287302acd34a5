/**
 * The fake Cloudflare API's test-only control protocol (`/__control`), shared by the Node server
 * (test/fake-cloudflare-api/server.ts) and the tests that run inside workerd. This file must stay
 * free of Node and Workers types so both programs can import it.
 */

/** The bearer token the fake accepts; the real API answers anything else with 403 code 10000. */
export const FAKE_CF_API_TOKEN = "fake-cf-api-token";

/** Base path of the real API (`https://api.cloudflare.com/client/v4`), mirrored by the fake. */
export const FAKE_CF_API_PREFIX = "/client/v4";

/**
 * Makes the fake answer the next `count` API requests (optionally only those for `script`) with
 * `status` before looking at them, as Cloudflare's edge does when it rate-limits or fails.
 */
export interface FaultCommand {
  action: "fail";
  status: number;
  /** How many requests to fail; `-1` fails every matching request until `reset`. */
  count: number;
  /** Sent as the `Retry-After` header (seconds, or an HTTP date) when present. */
  retryAfter?: string;
  /** Only requests for this script name consume the fault. */
  script?: string;
}

/** The `script` of Analytics Engine SQL requests in the fake's log and fault filters. */
export const ANALYTICS_ENGINE_SCRIPT = "__analytics_engine__";

/** A metering data point as Analytics Engine stores it (dataset `shipyard_do_usage`). */
export interface UsagePoint {
  project: string;
  className: string;
  handler: string;
  wallMs: number;
  /** Epoch ms; defaults to now. */
  timestamp?: number;
  /** Analytics Engine's sampling weight; defaults to 1. */
  sampleInterval?: number;
}

/** Adds data points to the fake's Analytics Engine dataset. */
export interface UsagePointsCommand {
  action: "ae_points";
  points: UsagePoint[];
}

/** Makes the fake answer this script's migration tag refusals (10079) in the older wording. */
export interface Legacy10079Command {
  action: "legacy_10079";
  script: string;
}

/** Creates a dispatch namespace in an account of the fake (as `wrangler dispatch-namespace create`). */
export interface NamespaceCommand {
  action: "namespace";
  account: string;
  namespace: string;
}

export type ControlCommand =
  | FaultCommand
  | UsagePointsCommand
  | Legacy10079Command
  | NamespaceCommand
  | { action: "reset" };

/** One API request the fake received (control requests are not logged). */
export interface LoggedRequest {
  method: string;
  /** Path without the query string, e.g. `/client/v4/accounts/a/workers/dispatch/namespaces/n/scripts/s`. */
  path: string;
  /** The script name in the path, if any. */
  script: string | null;
  status: number;
  /** When the fake received the request (epoch ms, the fake's clock). */
  receivedAt: number;
}
