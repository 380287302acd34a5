import { z } from "zod";
import { AuditListSchema, AuditQueryParamsSchema } from "../schemas/audit.schema.ts";
import { AcceptedSchema, HealthSchema, MetricsSchema } from "../schemas/http.schema.ts";
import {
  DeadLetterSchema,
  DlqDeletedSchema,
  DlqListQuerySchema,
  DlqListSchema,
  DlqPurgeRequestSchema,
  DlqPurgeSchema,
  QueueSendAcceptedSchema,
  QueueSendRequestSchema,
  RedriveAcceptedSchema,
  RedriveRequestSchema,
  RedriveStatusSchema,
} from "../schemas/dlq.schema.ts";
import { CounterValuesSchema, CountersRequestSchema } from "../schemas/counter.schema.ts";
import {
  DeployAcceptedSchema,
  DeployManifestSchema,
  DeployStatusSchema,
  ProjectStatusSchema,
} from "../schemas/deploy.schema.ts";
import { RateLimitResetSchema, RateLimitStatusSchema, type RouteClass } from "../schemas/rate-limit.schema.ts";
import { EventsRequestSchema } from "../schemas/runtime-event.schema.ts";
import type { CredentialKind } from "./auth.ts";
import { getCounter, postCounters } from "./counters.producer.ts";
import type { Handler, Method } from "./handler.ts";
import {
  deleteProject,
  getDeployStatus,
  getProjectStatus,
  getProjects,
  postDeploy,
  postRollback,
} from "./deploys.producer.ts";
import {
  EnforcementRunRequestSchema,
  getDoUsage,
  getEnforcementRun,
  postEnforcementRestore,
  postEnforcementRun,
} from "./enforcement.producer.ts";
import { postEvents } from "./events.producer.ts";
import { getHealth } from "./health.producer.ts";
import { getAudit } from "./audit.producer.ts";
import {
  deleteDeadLetterById,
  getDeadLetterById,
  getDeadLetters,
  getRedrive,
  postPurge,
  postRedrive,
  postRedriveCancel,
} from "./dlq.producer.ts";
import { postQueueSend } from "./queues.producer.ts";
import { getMetrics } from "./metrics.producer.ts";
import { getRateLimits, resetRateLimits } from "./rate-limits.producer.ts";

const DoUsageSchema = z.object({
  project_id: z.string(),
  window_hours: z.number(),
  wall_ms: z.number().int(),
  invocations: z.number(),
  threshold_ms: z.number().int(),
  do_enforcement_status: z.enum(["none", "enforced"]),
  removed_bindings: z.array(z.object({ name: z.string(), class_name: z.string() })),
  enforced_at: z.number().int().nullable(),
});

const RestoreSchema = z.object({
  project_id: z.string(),
  restored: z.array(z.string()),
  do_enforcement_status: z.literal("none"),
});

/**
 * One entry per endpoint: the router serves it and `GET /v1/openapi.json` documents it, from the
 * same zod schemas the handler validates with, so the document cannot drift from the code.
 */
interface RouteCommon {
  method: Method;
  /** itty-router pattern, e.g. `/v1/counters/:scope/:key`. */
  path: string;
  summary: string;
  request?: z.ZodType;
  /** Query parameters, documented from the same schema the handler validates them with. */
  query?: z.ZodObject;
  /**
   * Success status and body schema; `alternatives` lists other media types the success answer can
   * take (e.g. `text/csv` chosen by a `format` parameter), with what they hold.
   */
  response: { status: number; schema: z.ZodType; alternatives?: Record<string, string> };
  /** Error statuses this endpoint can answer besides 401/403/405/429/5xx. */
  errors?: number[];
  /**
   * Counts every request against this class of `RATE_LIMITS` (producers/rate-limit.middleware.ts): by the
   * credential's identity, or the client IP when `auth` is "none"; answers carry `X-RateLimit-*`,
   * and over the limit is 429 with `Retry-After` before the handler runs.
   */
  rateLimit?: RouteClass;
}

/**
 * Who may call: `auth` names the credential the router demands before the handler runs (401 for
 * none or an unknown one, 403 for the other kind), and the handler receives the principal; routes
 * with `auth: "none"` (health, the signed webhook) authenticate nothing at the router.
 */
type RouteAuth = { auth: "none"; handler: Handler<null> } | { auth: CredentialKind; handler: Handler };

export type RouteSpec = RouteCommon & RouteAuth;

export const ROUTES: readonly RouteSpec[] = [
  {
    method: "GET",
    path: "/v1/health",
    summary: "Liveness and the configuration this instance runs with",
    auth: "none",
    handler: getHealth,
    response: { status: 200, schema: HealthSchema },
  },
  {
    method: "POST",
    path: "/v1/events",
    summary: "Ingest runtime telemetry events (stored once per id)",
    auth: "ingest",
    rateLimit: "ingest",
    handler: postEvents,
    request: EventsRequestSchema,
    response: { status: 202, schema: AcceptedSchema },
    errors: [400, 413, 415, 503],
  },
  {
    method: "POST",
    path: "/v1/counters",
    summary: "Apply counter increments (each id exactly once; values never below 0)",
    auth: "ingest",
    rateLimit: "ingest",
    handler: postCounters,
    request: CountersRequestSchema,
    response: { status: 202, schema: AcceptedSchema },
    errors: [400, 413, 415, 503],
  },
  {
    method: "GET",
    path: "/v1/counters/:scope/:key",
    summary: "A counter's values, including deltas still buffered in its shard",
    auth: "ingest",
    rateLimit: "ingest",
    handler: getCounter,
    response: { status: 200, schema: CounterValuesSchema },
    errors: [400],
  },
  {
    method: "POST",
    path: "/v1/deploys",
    summary: "Deploy a tenant Worker (Standard Webhooks signature; the same webhook-id starts one deploy)",
    auth: "none",
    rateLimit: "webhook",
    handler: postDeploy,
    request: DeployManifestSchema,
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [400, 401, 413, 415, 503],
  },
  {
    method: "GET",
    path: "/v1/deploys/:id",
    summary: "A deploy's status, steps with attempts, migration and error",
    auth: "admin",
    rateLimit: "admin",
    handler: getDeployStatus,
    response: { status: 200, schema: DeployStatusSchema },
    errors: [404],
  },
  {
    method: "GET",
    path: "/v1/projects",
    summary: "Every project with its Durable Object and enforcement status",
    auth: "admin",
    rateLimit: "admin",
    handler: getProjects,
    response: { status: 200, schema: z.object({ projects: z.array(ProjectStatusSchema) }) },
  },
  {
    method: "GET",
    path: "/v1/projects/:id",
    summary: "One project's status",
    auth: "admin",
    rateLimit: "admin",
    handler: getProjectStatus,
    response: { status: 200, schema: ProjectStatusSchema },
    errors: [404],
  },
  {
    method: "DELETE",
    path: "/v1/projects/:id",
    summary: "Delete a project (409 naming the Durable Object classes at stake unless ?confirm=<id>)",
    auth: "admin",
    rateLimit: "admin",
    handler: deleteProject,
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [404, 409],
  },
  {
    method: "POST",
    path: "/v1/projects/:id/rollback",
    summary: "Re-deploy the previous version (no Durable Object migration)",
    auth: "admin",
    rateLimit: "admin",
    handler: postRollback,
    response: { status: 202, schema: DeployAcceptedSchema },
    errors: [404, 409],
  },
  {
    method: "GET",
    path: "/v1/projects/:id/do-usage",
    summary: "Rolling 24 h Durable Object wall time, threshold, enforcement status and removed bindings",
    auth: "admin",
    rateLimit: "admin",
    handler: getDoUsage,
    response: { status: 200, schema: DoUsageSchema },
    errors: [404],
  },
  {
    method: "POST",
    path: "/v1/projects/:id/enforcement/restore",
    summary: "Put back the Durable Object bindings enforcement removed",
    auth: "admin",
    rateLimit: "admin",
    handler: postEnforcementRestore,
    response: { status: 200, schema: RestoreSchema },
    errors: [404, 409],
  },
  {
    method: "POST",
    path: "/v1/admin/enforcement/run",
    summary: "Run the enforcement check now (optionally with a lower threshold_ms for this run)",
    auth: "admin",
    rateLimit: "admin",
    handler: postEnforcementRun,
    request: EnforcementRunRequestSchema,
    response: { status: 202, schema: z.object({ run_id: z.string(), status_url: z.string() }) },
    errors: [400],
  },
  {
    method: "GET",
    path: "/v1/admin/enforcement/runs/:id",
    summary: "An enforcement run's status and outcome",
    auth: "admin",
    rateLimit: "admin",
    handler: getEnforcementRun,
    response: {
      status: 200,
      schema: z.object({ run_id: z.string(), status: z.string(), output: z.unknown(), error: z.string().nullable() }),
    },
    errors: [404],
  },
  {
    method: "GET",
    path: "/v1/admin/audit",
    summary: "The audit trail (admin actions, deploys, rollbacks, downs, enforcement, redrives) as JSON or CSV",
    auth: "admin",
    rateLimit: "admin",
    handler: getAudit,
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
  {
    method: "GET",
    path: "/v1/admin/dlq",
    summary: "Dead-lettered messages, newest first: source queue, attempts, last error, failure times, body",
    auth: "admin",
    rateLimit: "admin",
    handler: getDeadLetters,
    query: DlqListQuerySchema,
    response: { status: 200, schema: DlqListSchema },
    errors: [400],
  },
  {
    method: "POST",
    path: "/v1/admin/dlq/purge",
    summary: "Delete the archived messages matching a filter or ids (dry_run counts only)",
    auth: "admin",
    rateLimit: "admin",
    handler: postPurge,
    request: DlqPurgeRequestSchema,
    response: { status: 200, schema: DlqPurgeSchema },
    errors: [400, 413, 415],
  },
  {
    method: "POST",
    path: "/v1/admin/dlq/redrive",
    summary: "Start a redrive task: move archived messages back to their queue at max_per_second at most",
    auth: "admin",
    rateLimit: "admin",
    handler: postRedrive,
    request: RedriveRequestSchema,
    response: { status: 202, schema: RedriveAcceptedSchema },
    errors: [400, 409, 413, 415, 503],
  },
  {
    method: "GET",
    path: "/v1/admin/dlq/redrive/:task_id",
    summary: "A redrive task's status, counts and latest rounds",
    auth: "admin",
    rateLimit: "admin",
    handler: getRedrive,
    response: { status: 200, schema: RedriveStatusSchema },
    errors: [400, 404],
  },
  {
    method: "POST",
    path: "/v1/admin/dlq/redrive/:task_id/cancel",
    summary: "Cancel a redrive task (what was moved stays moved)",
    auth: "admin",
    rateLimit: "admin",
    handler: postRedriveCancel,
    response: { status: 200, schema: RedriveStatusSchema },
    errors: [400, 404, 409],
  },
  {
    method: "GET",
    path: "/v1/admin/dlq/:id",
    summary: "One archived message",
    auth: "admin",
    rateLimit: "admin",
    handler: getDeadLetterById,
    response: { status: 200, schema: DeadLetterSchema },
    errors: [400, 404],
  },
  {
    method: "DELETE",
    path: "/v1/admin/dlq/:id",
    summary: "Delete one archived message",
    auth: "admin",
    rateLimit: "admin",
    handler: deleteDeadLetterById,
    response: { status: 200, schema: DlqDeletedSchema },
    errors: [400, 404],
  },
  {
    method: "POST",
    path: "/v1/admin/queues/:queue/send",
    summary: "Put one raw, unvalidated message on a queue or dead-letter queue (on-call repair tool)",
    auth: "admin",
    rateLimit: "admin",
    handler: postQueueSend,
    request: QueueSendRequestSchema,
    response: { status: 202, schema: QueueSendAcceptedSchema },
    errors: [400, 404, 413, 415, 503],
  },
  {
    method: "GET",
    path: "/v1/admin/metrics",
    summary: "Pipeline counters: D1 round trips, shard RPCs, buffered rows",
    auth: "admin",
    rateLimit: "admin",
    handler: getMetrics,
    response: { status: 200, schema: MetricsSchema },
  },
  {
    method: "GET",
    path: "/v1/admin/rate-limits/:identifier",
    summary: "An identifier's current rate-limit window per route class (counts nothing)",
    auth: "admin",
    rateLimit: "admin",
    handler: getRateLimits,
    response: { status: 200, schema: RateLimitStatusSchema },
    errors: [400, 503],
  },
  {
    method: "POST",
    path: "/v1/admin/rate-limits/:identifier/reset",
    summary: "Forget every request counted for an identifier (shard, D1 fallback, this isolate)",
    auth: "admin",
    rateLimit: "admin",
    handler: resetRateLimits,
    response: { status: 200, schema: RateLimitResetSchema },
    errors: [400, 503],
  },
];
