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
      return;
    case CRON_EVERY_5_MIN:
      await reconcileCounters(env);
      return;
    default:
      return;
  }
}
