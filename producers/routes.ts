import type { z } from "zod";
import { AcceptedSchema, HealthSchema, MetricsSchema } from "../schemas/http.schema.ts";
import { EventsRequestSchema } from "../schemas/runtime-event.schema.ts";
import type { CredentialKind } from "./auth.ts";
import { postEvents } from "./events.producer.ts";
import { getHealth } from "./health.producer.ts";
import { getMetrics } from "./metrics.producer.ts";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
export type Handler = (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;

/**
 * One entry per endpoint: the router serves it and `GET /v1/openapi.json` documents it, from the
 * same zod schemas the handler validates with, so the document cannot drift from the code.
 */
export interface RouteSpec {
  method: Method;
  /** itty-router pattern, e.g. `/v1/counters/:scope/:key`. */
  path: string;
  summary: string;
  auth: CredentialKind | "none";
  handler: Handler;
  request?: z.ZodType;
  /** Success status and body schema. */
  response: { status: number; schema: z.ZodType };
  /** Error statuses this endpoint can answer besides 401/403/405/429/5xx. */
  errors?: number[];
}

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
    handler: postEvents,
    request: EventsRequestSchema,
    response: { status: 202, schema: AcceptedSchema },
    errors: [400, 413, 415, 503],
  },
  {
    method: "GET",
    path: "/v1/admin/metrics",
    summary: "Pipeline counters: D1 round trips, shard RPCs, buffered rows",
    auth: "admin",
    handler: getMetrics,
    response: { status: 200, schema: MetricsSchema },
  },
];
