import { z } from "zod";

/** `POST /v1/admin/enforcement/run` body. */
export const EnforcementRunRequestSchema = z.strictObject({
  threshold_ms: z.number().int().nonnegative().optional().describe("overrides ENFORCEMENT_THRESHOLD_MS for this run"),
});

export const EnforcementRunAcceptedSchema = z.object({ run_id: z.string(), status_url: z.string() });

/** What a finished enforcement run found and did (EnforcementWorkflow's outcome). */
export const EnforcementOutcomeSchema = z.object({
  projects: z.number().int().describe("projects with Durable Objects looked at"),
  over: z.number().int().describe("projects over the threshold"),
  enforced: z.array(z.string()).describe("projects whose Durable Object bindings this run removed"),
  thresholdMs: z.number().int(),
});

export const EnforcementRunStatusSchema = z.object({
  run_id: z.string(),
  status: z.string().describe("the Workflow instance's status: queued, running, complete, errored, terminated …"),
  output: EnforcementOutcomeSchema.nullable().describe("null until the run completes"),
  error: z.string().nullable(),
});

/** A Durable Object binding enforcement removed (and a restore or redeploy puts back). */
export const RemovedBindingSchema = z.object({ name: z.string(), class_name: z.string() });

/** `GET /v1/projects/:id/do-usage`. */
export const DoUsageSchema = z.object({
  project_id: z.string(),
  window_hours: z.number(),
  wall_ms: z.number().int(),
  invocations: z.number(),
  as_of: z.number().int().describe("when the figure was read (epoch ms)"),
  source: z
    .enum(["runtime_events"])
    .describe(
      "stored do_usage events in D1: measured by the host object locally, from the runtime's trace items (Tail Worker) in production",
    ),
  lag_ms: z
    .number()
    .int()
    .describe("how far behind the invocations the figure may be (queue batch wait + shard flush delay locally)"),
  threshold_ms: z.number().int(),
  do_enforcement_status: z.enum(["none", "enforced"]),
  removed_bindings: z.array(RemovedBindingSchema),
  enforced_at: z.number().int().nullable(),
});

/** `POST /v1/projects/:id/enforcement/restore`. */
export const RestoreSchema = z.object({
  project_id: z.string(),
  restored: z.array(z.string()),
  do_enforcement_status: z.literal("none"),
});

/** `:id` of `GET /v1/admin/enforcement/runs/:id`. */
export const EnforcementRunParamsSchema = z.object({ id: z.string().regex(/^enforcement-[A-Za-z0-9-]+$/) });
