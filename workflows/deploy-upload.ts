import { NonRetryableError } from "cloudflare:workflows";
import { log } from "../lib/log.ts";
import { type DeployPlan, type ResourceIds, planMigration, uploadRequest } from "../platform/deploy-plan.ts";
import type { MigrationPlan } from "../platform/do-migrations.ts";
import { type ScriptHost, ScriptHostError } from "../platform/script-host.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";

/** What the deploy workflow's upload step uploads (platform/deploy-plan.ts computes it). */
export interface UploadInput {
  deployId: string;
  projectId: string;
  rollback: boolean;
  plan: DeployPlan;
  manifest: DeployManifest;
  migration: MigrationPlan;
  resources: ResourceIds;
}

/**
 * The deploy's upload (the workflow's "upload" step): uploads, and when the platform says the old
 * migration tag does not match, re-reads the live tag and recomputes the migration from it (a crash
 * after an earlier upload of this very step lands here too: the live tag is already the new one,
 * so the plan becomes "no migration"). A script the platform refuses (`invalid_script`: the
 * client's message names the cause) can never succeed as is: NonRetryableError. Three recomputes
 * at most; then the mismatch goes to the step's own retries.
 */
export async function uploadRecomputingMigration(
  host: ScriptHost,
  input: UploadInput,
): Promise<{ versionId: string; migrationTag: string | null; classes: string[]; recomputed: number }> {
  let current = input.migration;
  for (let recomputed = 0; ; recomputed++) {
    try {
      const result = await host.upload(
        uploadRequest(input.projectId, input.plan, input.manifest, current, input.rollback, input.resources),
      );
      return { versionId: result.versionId, migrationTag: result.migrationTag, classes: current.classes, recomputed };
    } catch (error) {
      if (!(error instanceof ScriptHostError)) throw error;
      if (error.code === "invalid_script") throw new NonRetryableError(error.message);
      if (error.code !== "migration_tag_mismatch" || recomputed >= 3) throw error;
      const live = await host.getScript(input.projectId);
      const liveTag = error.details?.liveTag !== undefined ? error.details.liveTag : (live?.migrationTag ?? null);
      log.warn("deploy_migration_tag_mismatch", { deploy_id: input.deployId, live_tag: liveTag });
      current = planMigration(
        input.manifest,
        liveTag,
        input.migration.kind === "migrate" ? current.classes : input.migration.classes,
      );
    }
  }
}
