/**
 * The console's one way to the data: the admin API, same origin, authenticated by the session
 * cookie (HttpOnly: this code never sees a credential). Every request carries the CSRF header the
 * API requires of cookie-authenticated state changes (producers/session.ts).
 */
import type { z } from "zod";
import type { AuditListSchema } from "../../schemas/audit.schema.ts";
import type {
  DeadLetterSchema,
  DlqListSchema,
  DlqPurgeSchema,
  DlqStatsSchema,
  RedriveAcceptedSchema,
  RedriveStatusSchema,
} from "../../schemas/dlq.schema.ts";
import type { DeployAcceptedSchema, DeployStatusSchema, ProjectStatusSchema } from "../../schemas/deploy.schema.ts";
import type { MetricsSchema } from "../../schemas/http.schema.ts";

export type DeadLetter = z.infer<typeof DeadLetterSchema>;
export type DlqList = z.infer<typeof DlqListSchema>;
export type DlqStats = z.infer<typeof DlqStatsSchema>;
export type DlqPurge = z.infer<typeof DlqPurgeSchema>;
export type RedriveAccepted = z.infer<typeof RedriveAcceptedSchema>;
export type RedriveStatus = z.infer<typeof RedriveStatusSchema>;
export type ProjectStatus = z.infer<typeof ProjectStatusSchema>;
export type DeployStatus = z.infer<typeof DeployStatusSchema>;
export type DeployAccepted = z.infer<typeof DeployAcceptedSchema>;
export type Metrics = z.infer<typeof MetricsSchema>;
export type AuditList = z.infer<typeof AuditListSchema>;
export type AuditEntry = AuditList["entries"][number];

export interface Session {
  principal: string;
  via: "bearer" | "session";
  expires_at: number | null;
}

export interface DoUsage {
  project_id: string;
  window_hours: number;
  wall_ms: number;
  invocations: number;
  threshold_ms: number;
  do_enforcement_status: "none" | "enforced";
  removed_bindings: { name: string; class_name: string }[];
  enforced_at: number | null;
}

/** A non-2xx answer in the contract's error format. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Called on every 401 (session expired): the app goes back to the sign-in form. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** `path` with the non-empty entries of `query` as its query string. */
export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** The contract's `{"error": {code, message, details}}`, as far as the body has it. */
function errorOf(json: unknown): { code?: string; message?: string; details?: unknown } {
  if (typeof json !== "object" || json === null || !("error" in json)) return {};
  const error: unknown = json.error;
  if (typeof error !== "object" || error === null) return {};
  return {
    code: "code" in error && typeof error.code === "string" ? error.code : undefined,
    message: "message" in error && typeof error.message === "string" ? error.message : undefined,
    details: "details" in error ? error.details : undefined,
  };
}

async function request<T>(method: string, path: string, body?: unknown, quiet401 = false): Promise<T> {
  const headers: Record<string, string> = { "x-shipyard-csrf": "1", accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = errorOf(json);
    if (response.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(
      response.status,
      error.code ?? "http_error",
      error.message ?? `HTTP ${response.status}`,
      error.details,
    );
  }
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion -- T is the route's own response schema (z.infer), and the API is this console's own origin
  return json as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", withQuery(path, query)),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  delete: <T>(path: string, query?: Query) => request<T>("DELETE", withQuery(path, query)),
  /** Whether a session is open (no redirect on 401: that is the answer). */
  session: () => request<Session>("GET", "/v1/admin/session", undefined, true),
  signIn: (token: string) => request<Session>("POST", "/v1/admin/session", { token }, true),
  signOut: () => request<{ signed_out: boolean }>("DELETE", "/v1/admin/session"),
};

/** Path segment, percent-encoded. */
export const seg = encodeURIComponent;
