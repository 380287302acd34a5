/**
 * The console's one way to the data: the typed API client (lib/api-client.ts) that the CLI,
 * scripts and tests use, on this same origin. No token here: the browser sends the HttpOnly
 * session cookie, and every request carries the CSRF header the API requires of
 * cookie-authenticated state changes (producers/session.ts). Answers are parsed with the API
 * table's own response schemas.
 */
import { z } from "zod";
import { ApiClient, ApiError, type CallOutput, type InputArgs } from "../../lib/api-client.ts";
import type { OperationId } from "../../schemas/api.ts";
import { CSRF_HEADER } from "../../schemas/session.schema.ts";

// zod compiles fast parsers with `new Function` when it can; the console's CSP forbids eval (and
// would log every attempt as a violation), so it parses without.
z.config({ jitless: true });

export { ApiError };
export type { CallOutput };

export type DeadLetter = CallOutput<"getDeadLetter">;
export type DlqStats = CallOutput<"getDeadLetterStats">;
export type RedriveStatus = CallOutput<"getRedrive">;
export type ProjectStatus = CallOutput<"getProject">;
export type DeployStatus = CallOutput<"getDeploy">;
export type DoUsage = CallOutput<"getDoUsage">;
export type Session = CallOutput<"getSession">;
export type AuditEntry = CallOutput<"listAudit">["entries"][number];

const client = new ApiClient({
  baseUrl: location.origin,
  fetch: (request) => {
    request.headers.set(CSRF_HEADER, "1");
    return fetch(request);
  },
});

/** Called on a 401 (the session expired): the app goes back to the sign-in form. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/** One API call; a 401 signs the console out (except where the answer is the point: sign-in, session). */
export async function call<K extends OperationId>(op: K, ...args: InputArgs<K>): Promise<CallOutput<K>> {
  try {
    return await client.call(op, ...args);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && op !== "createSession" && op !== "getSession") {
      onUnauthorized();
    }
    throw error;
  }
}

/** The URL of a call, for plain links (the audit CSV export downloads with the cookie). */
export function urlOf<K extends OperationId>(op: K, ...args: InputArgs<K>): string {
  const url = client.url(op, ...args);
  return `${url.pathname}${url.search}`;
}
