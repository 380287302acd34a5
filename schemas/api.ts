import type { z } from "zod";
import { AuditListSchema, AuditQueryParamsSchema } from "./audit.schema.ts";
import { CounterParamsSchema, CounterValuesSchema, CountersRequestSchema } from "./counter.schema.ts";
import {
  DeployAcceptedSchema,
  DeployManifestSchema,
  DeployParamsSchema,
  DeploySecretRotatedSchema,
  DeployStatusSchema,
  ProjectDeleteQuerySchema,
  ProjectListSchema,
  ProjectParamsSchema,
  ProjectDetailSchema,
  ResourceExportSchema,
  ResourceParamsSchema,
} from "./deploy.schema.ts";
import {
  DeadLetterSchema,
  DlqDeletedSchema,
  DlqIdParamsSchema,
  DlqListQuerySchema,
  DlqListSchema,
  DlqPurgeRequestSchema,
  DlqPurgeSchema,
  DlqFilterSchema,
  DlqStatsSchema,
  QueueSendAcceptedSchema,
  QueueSendParamsSchema,
  QueueSendRequestSchema,
  RedriveAcceptedSchema,
  RedriveRequestSchema,
  RedriveStatusSchema,
  RedriveTaskParamsSchema,
} from "./dlq.schema.ts";
import {
  DoUsageSchema,
  EnforcementRunAcceptedSchema,
  EnforcementRunParamsSchema,
  EnforcementRunRequestSchema,
  EnforcementRunStatusSchema,
  RestoreSchema,
} from "./enforcement.schema.ts";
import { AcceptedSchema, HealthSchema, MetricsSchema } from "./http.schema.ts";
import {
  RateLimitParamsSchema,
  RateLimitResetSchema,
  RateLimitStatusSchema,
  type RouteClass,
} from "./rate-limit.schema.ts";
import { EventsRequestSchema } from "./runtime-event.schema.ts";
import { SessionEndedSchema, SessionRequestSchema, SessionSchema } from "./session.schema.ts";

/** The HTTP methods the API serves. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * Bearer credentials. Two kinds: ingest keys (`INGEST_KEYS`; producers) and the admin token
 * (`ADMIN_TOKEN`; on-call and deploy management).
 */
export type CredentialKind = "ingest" | "admin";

/**
 * One endpoint of Shipyard's HTTP API, as a client sees it. The server serves it (producers/routes.ts
 * adds the handler), `GET /v1/openapi.json` documents it, and the typed client (lib/api-client.ts)
 * calls it, all from these same zod schemas, so none of the three can drift from the others.
 */
export interface EndpointSpec {
  method: Method;
  /** itty-router pattern, e.g. `/v1/counters/:scope/:key`. */
  path: string;
  summary: string;
  /** The credential the router demands before the handler runs; "none" for health and the signed webhook. */
  auth: CredentialKind | "none";
  /** Path parameters (`:name` in `path`), validated by the handler and documented with their patterns. */
  params?: z.ZodObject;
  request?: z.ZodType;
  /** Query parameters, documented from the same schema the handler validates them with. */
  query?: z.ZodObject;
  /**
   * Success status and body schema; `alternatives` lists other media types the success answer can
   * take (e.g. `text/csv` chosen by a `format` parameter), with what they hold.
   */
  response: { status: number; schema: z.ZodType; alternatives?: Record<string, string> };
  /** Error statuses this endpoint can answer besides 401/403/405/429/5xx. */
  errors?: readonly number[];
  /**
   * Counts every request against this class of `RATE_LIMITS`: by the credential's identity, or the
   * client IP when `auth` is "none"; answers carry `X-RateLimit-*`, and over the limit is 429 with
   * `Retry-After` before the handler runs.
   */
  rateLimit?: RouteClass;
}

/** Every endpoint, keyed by its operation id (the OpenAPI `operationId` and the client's method name). */
export const API = {
  getHealth: {
    method: "GET",
    path: "/v1/health",
    summary: "Liveness and the configuration this instance runs with",
    auth: "none",
    response: { status: 200, schema: HealthSchema },
  },
  postEvents: {
    method: "POST",
    path: "/v1/events",
    summary: "Ingest runtime telemetry events (stored once per id)",
    auth: "ingest",
    rateLimit: "ingest",
    request: EventsRequestSchema,
    response: { status: 202, schema: AcceptedSchema },
    errors: [400, 413, 415, 503],
  },
  postCounters: {
    method: "POST",
    path: "/v1/counters",
    summary: "Apply counter increments (each id exactly once; values never below 0)",
    auth: "ingest",
    rateLimit: "ingest",
    request: CountersRequestSchema,
    response: { status: 202, schema: AcceptedSchema },
    errors: [400, 413, 415, 503],
  },
  getCounter: {
    method: "GET",
    path: "/v1/counters/:scope/:key",
    summary: "A counter's values, including deltas still buffered in its shard",
    params: CounterParamsSchema,
    auth: "ingest",
    rateLimit: "ingest",
    response: { status: 200, schema: CounterValuesSchema },
    errors: [400],
  },
  postDeploy: {
    method: "POST",
    path: "/v1/deploys",
    summary:
      "Deploy a tenant Worker (Standard Webhooks signature by the project's own deploy secret; the shared secret only creates projects; the same webhook-id starts one deploy)",
    auth: "none",
    rateLimit: "webhook",
    request: DeployManifestSchema,
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [400, 401, 413, 415, 503],
  },
  getDeploy: {
    method: "GET",
    path: "/v1/deploys/:id",
    summary: "A deploy's status, steps with attempts, migration and error",
    params: DeployParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: DeployStatusSchema },
    errors: [404],
  },
  listProjects: {
    method: "GET",
    path: "/v1/projects",
    summary: "Every project with its Durable Object and enforcement status",
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: ProjectListSchema },
  },
  getProject: {
    method: "GET",
    path: "/v1/projects/:id",
    summary: "One project's status and the resources (D1, KV, R2) provisioned for it, with sizes",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: ProjectDetailSchema },
    errors: [404],
  },
  deleteProject: {
    method: "DELETE",
    path: "/v1/projects/:id",
    summary:
      "Delete a project and its resources (409 naming the Durable Object classes and D1/KV/R2 resources at stake unless ?confirm=<id>)",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    query: ProjectDeleteQuerySchema,
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [404, 409],
  },
  exportResource: {
    method: "POST",
    path: "/v1/projects/:id/resources/:binding/export",
    summary: "A project's D1 database as SQL (schema and rows), e.g. before `down` deletes it",
    params: ResourceParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: ResourceExportSchema },
    errors: [404, 409],
  },
  rollbackProject: {
    method: "POST",
    path: "/v1/projects/:id/rollback",
    summary: "Re-deploy the previous version (no Durable Object migration)",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [404, 409],
  },
  rotateDeploySecret: {
    method: "POST",
    path: "/v1/projects/:id/deploy-secret/rotate",
    summary: "Replace the project's deploy signing secret (answered once; the old one is refused from now on)",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: DeploySecretRotatedSchema },
    errors: [404],
  },
  getDoUsage: {
    method: "GET",
    path: "/v1/projects/:id/do-usage",
    summary: "Rolling 24 h Durable Object wall time, threshold, enforcement status and removed bindings",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: DoUsageSchema },
    errors: [404],
  },
  restoreEnforcement: {
    method: "POST",
    path: "/v1/projects/:id/enforcement/restore",
    summary: "Put back the Durable Object bindings enforcement removed",
    params: ProjectParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: RestoreSchema },
    errors: [404, 409],
  },
  runEnforcement: {
    method: "POST",
    path: "/v1/admin/enforcement/run",
    summary: "Run the enforcement check now (optionally with a lower threshold_ms for this run)",
    auth: "admin",
    rateLimit: "admin",
    request: EnforcementRunRequestSchema,
    response: { status: 202, schema: EnforcementRunAcceptedSchema },
    errors: [400],
  },
  getEnforcementRun: {
    method: "GET",
    path: "/v1/admin/enforcement/runs/:id",
    summary: "An enforcement run's status and outcome",
    params: EnforcementRunParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: EnforcementRunStatusSchema },
    errors: [404],
  },
  listAudit: {
    method: "GET",
    path: "/v1/admin/audit",
    summary: "The audit trail (admin actions, deploys, rollbacks, downs, enforcement, redrives) as JSON or CSV",
    auth: "admin",
    rateLimit: "admin",
    query: AuditQueryParamsSchema,
    response: {
      status: 200,
      schema: AuditListSchema,
      alternatives: {
        "text/csv":
          "format=csv: an attachment with columns id,time,at,type,actor,project_id,details (RFC 4180, formula-safe); X-Next-Cursor pages on",
      },
    },
    errors: [400, 503],
  },
  listDeadLetters: {
    method: "GET",
    path: "/v1/admin/dlq",
    summary: "Dead-lettered messages, newest first: source queue, attempts, last error, failure times, body",
    auth: "admin",
    rateLimit: "admin",
    query: DlqListQuerySchema,
    response: { status: 200, schema: DlqListSchema },
    errors: [400],
  },
  getDeadLetterStats: {
    method: "GET",
    path: "/v1/admin/dlq/stats",
    summary: "How many archived messages match the filters, per source queue and per failure reason",
    auth: "admin",
    rateLimit: "admin",
    query: DlqFilterSchema,
    response: { status: 200, schema: DlqStatsSchema },
    errors: [400],
  },
  purgeDeadLetters: {
    method: "POST",
    path: "/v1/admin/dlq/purge",
    summary: "Delete the archived messages matching a filter or ids (dry_run counts only)",
    auth: "admin",
    rateLimit: "admin",
    request: DlqPurgeRequestSchema,
    response: { status: 200, schema: DlqPurgeSchema },
    errors: [400, 413, 415],
  },
  startRedrive: {
    method: "POST",
    path: "/v1/admin/dlq/redrive",
    summary: "Start a redrive task: move archived messages back to their queue at max_per_second at most",
    auth: "admin",
    rateLimit: "admin",
    request: RedriveRequestSchema,
    response: { status: 202, schema: RedriveAcceptedSchema },
    errors: [400, 409, 413, 415, 503],
  },
  getRedrive: {
    method: "GET",
    path: "/v1/admin/dlq/redrive/:task_id",
    summary: "A redrive task's status, counts and latest rounds",
    params: RedriveTaskParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: RedriveStatusSchema },
    errors: [400, 404],
  },
  cancelRedrive: {
    method: "POST",
    path: "/v1/admin/dlq/redrive/:task_id/cancel",
    summary: "Cancel a redrive task (what was moved stays moved)",
    params: RedriveTaskParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: RedriveStatusSchema },
    errors: [400, 404, 409],
  },
  getDeadLetter: {
    method: "GET",
    path: "/v1/admin/dlq/:id",
    summary: "One archived message",
    params: DlqIdParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: DeadLetterSchema },
    errors: [400, 404],
  },
  deleteDeadLetter: {
    method: "DELETE",
    path: "/v1/admin/dlq/:id",
    summary: "Delete one archived message",
    params: DlqIdParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: DlqDeletedSchema },
    errors: [400, 404],
  },
  sendToQueue: {
    method: "POST",
    path: "/v1/admin/queues/:queue/send",
    summary: "Put one raw, unvalidated message on a queue or dead-letter queue (on-call repair tool)",
    params: QueueSendParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    request: QueueSendRequestSchema,
    response: { status: 202, schema: QueueSendAcceptedSchema },
    errors: [400, 404, 413, 415, 503],
  },
  getMetrics: {
    method: "GET",
    path: "/v1/admin/metrics",
    summary: "Pipeline counters: D1 round trips, shard RPCs, buffered rows",
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: MetricsSchema },
  },
  getRateLimits: {
    method: "GET",
    path: "/v1/admin/rate-limits/:identifier",
    summary: "An identifier's current rate-limit window per route class (counts nothing)",
    params: RateLimitParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: RateLimitStatusSchema },
    errors: [400, 503],
  },
  resetRateLimits: {
    method: "POST",
    path: "/v1/admin/rate-limits/:identifier/reset",
    summary: "Forget every request counted for an identifier (shard, D1 fallback, this isolate)",
    params: RateLimitParamsSchema,
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: RateLimitResetSchema },
    errors: [400, 503],
  },
  // The on-call console's session (producers/session.producer.ts, docs/console.md).
  createSession: {
    method: "POST",
    path: "/v1/admin/session",
    summary: "Console sign-in: trade the admin token for an HttpOnly session cookie (same-origin only)",
    auth: "none",
    rateLimit: "admin",
    request: SessionRequestSchema,
    response: { status: 200, schema: SessionSchema },
    errors: [400, 401, 403, 413, 415],
  },
  getSession: {
    method: "GET",
    path: "/v1/admin/session",
    summary: "Who is signed in (bearer token or console session) and until when",
    auth: "admin",
    rateLimit: "admin",
    response: { status: 200, schema: SessionSchema },
  },
  deleteSession: {
    method: "DELETE",
    path: "/v1/admin/session",
    summary: "Console sign-out: clear the session cookie",
    auth: "none",
    rateLimit: "admin",
    response: { status: 200, schema: SessionEndedSchema },
    errors: [403],
  },
} as const satisfies Record<string, EndpointSpec>;

export type Api = typeof API;
export type OperationId = keyof Api;

/** Every endpoint as a list, each with its operation id (what the document and the tests walk). */
export const ENDPOINTS: readonly (EndpointSpec & { operationId: OperationId })[] = Object.keys(API)
  .filter(isOperationId)
  .map((operationId) => ({ ...API[operationId], operationId }));

/** Whether `name` is an operation of the API table. */
export function isOperationId(name: string): name is OperationId {
  return Object.hasOwn(API, name);
}
