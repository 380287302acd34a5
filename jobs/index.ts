import { pruneAuditOutbox, relayAuditOutbox } from "../durable/audit-log.outbox.ts";
import { describeError, log } from "../lib/log.ts";
import { startEnforcement } from "../workflows/enforcement.workflow.ts";
import { reconcileCounters } from "./reconcile.job.ts";
import { pruneRuntimeEvents } from "./retention.job.ts";

/** Cron expressions in wrangler.toml `[triggers]`. */
export const CRON_RETENTION = "17 3 * * *";
export const CRON_EVERY_5_MIN = "*/5 * * * *";

/** Routes a cron trigger to its job. */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  switch (controller.cron) {
    case CRON_RETENTION:
      await pruneRuntimeEvents(env, controller.scheduledTime);
      await pruneAuditOutbox(env, controller.scheduledTime);
      return;
    case CRON_EVERY_5_MIN: {
      // All run every cycle; one failing must not stop the others.
      const [reconcile, enforcement] = await Promise.allSettled([
        reconcileCounters(env),
        startEnforcement(env, controller.scheduledTime, { trigger: "cron" }),
        // Ships audit entries no query has pulled yet into the AuditLog objects (never throws).
        relayAuditOutbox(env),
      ]);
      for (const outcome of [reconcile, enforcement]) {
        if (outcome.status === "rejected")
          log.error("cron_job_failed", { cron: controller.cron, error: describeError(outcome.reason) });
      }
      return;
    }
    default:
      // A cron in wrangler.toml `[triggers]` with no job here is a deploy mistake, like a queue
      // without a consumer: say so rather than do nothing in silence.
      log.error("cron_without_job", { cron: controller.cron });
      return;
  }
}
