import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep, type WorkflowStepConfig } from "cloudflare:workers";
import { auditStatement } from "../lib/audit.d1.ts";
import { config } from "../lib/config.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { scriptHost } from "../platform/index.ts";
import type { ScriptBinding } from "../platform/script-host.ts";
import { D1UsageSource, usageSource } from "../platform/usage-source.ts";

export const STEP_REFRESH_USAGE = "refresh usage rollups";
export const STEP_FIND_OVER_BUDGET = "find projects over budget";
/** Per project: `${STEP_RECORD_PREFIX} <project>` then `${STEP_REMOVE_PREFIX} <project>`. */
export const STEP_RECORD_PREFIX = "record enforcement";
export const STEP_REMOVE_PREFIX = "remove bindings";

export const WINDOW_MS = 24 * 3_600_000;
/** Enforcement cycles start every 5 minutes; one instance id per window makes overlaps no-ops. */
export const CYCLE_MS = 5 * 60_000;
/** Projects acted on per run; the rest wait for the next cycle (a run stays far from step limits). */
export const MAX_ENFORCED_PER_RUN = 200;

export interface EnforcementParams {
  /** The time the cycle is for (the cron's scheduled time, or now). */
  now: number;
  trigger: "cron" | "manual";
  /** Overrides ENFORCEMENT_THRESHOLD_MS for this run (on-call and the demo). */
  thresholdMs?: number;
}

export interface EnforcementOutcome {
  projects: number;
  over: number;
  enforced: string[];
  thresholdMs: number;
}

const STEP_CONFIG = {
  retries: { limit: 5, delay: "2 seconds", backoff: "exponential" },
  timeout: "5 minutes",
} satisfies WorkflowStepConfig;

/** The workflow instance id of the cycle containing `time`: overlapping triggers share it. */
export function enforcementInstanceId(time: number): string {
  return `enforcement-${Math.floor(time / CYCLE_MS)}`;
}

/** Durable Object bindings of a script (what enforcement removes). */
export function durableObjectBindings(bindings: readonly ScriptBinding[]): ScriptBinding[] {
  return bindings.filter((binding) => binding.type === "durable_object_namespace");
}

/**
 * The enforcement cycle: projects whose Durable Objects used more than the threshold of wall time
 * in the last 24 h lose their Durable Object bindings (the Worker stays online; routes that need no
 * Durable Object keep working) until a redeploy, a rollback or on-call restores them.
 *
 * One batched query finds every offender among all projects (10,000 projects cost one GROUP BY,
 * not 10,000 steps); only offenders get steps, two each, both idempotent: first the bindings about
 * to be removed are stored (insert-if-absent, so a retry never overwrites them with an already
 * stripped list), then they are removed through the ScriptHost (a retry finds none left to remove).
 */
export class EnforcementWorkflow extends WorkflowEntrypoint<Env, EnforcementParams> {
  override async run(event: WorkflowEvent<EnforcementParams>, step: WorkflowStep): Promise<EnforcementOutcome> {
    const { now } = event.payload;
    const thresholdMs = event.payload.thresholdMs ?? config(this.env).ENFORCEMENT_THRESHOLD_MS;
    const source = usageSource(this.env);

    await step.do(STEP_REFRESH_USAGE, STEP_CONFIG, async () =>
      source instanceof D1UsageSource ? { rows: await source.refresh(now) } : { rows: 0 },
    );
    const found = await step.do(STEP_FIND_OVER_BUDGET, STEP_CONFIG, async () => {
      const usage = await source.usageByProject(WINDOW_MS, now);
      const { results } = await this.env.DB.prepare(
        `SELECT id FROM projects WHERE status = 'active' AND do_classes != '[]'
           AND id NOT IN (SELECT project_id FROM do_enforcement)`,
      ).all<{ id: string }>();
      const over = results
        .map((row) => ({ project: row.id, wallMs: usage.get(row.id)?.wallMs ?? 0 }))
        .filter((entry) => entry.wallMs > thresholdMs)
        .toSorted((a, b) => b.wallMs - a.wallMs);
      if (over.length > MAX_ENFORCED_PER_RUN) {
        log.warn("enforcement_backlog", { over: over.length, acting_on: MAX_ENFORCED_PER_RUN });
      }
      return { projects: results.length, over: over.slice(0, MAX_ENFORCED_PER_RUN) };
    });

    const enforced: string[] = [];
    for (const { project, wallMs } of found.over) {
      const recorded = await step.do(`${STEP_RECORD_PREFIX} ${project}`, STEP_CONFIG, async () => {
        const script = await scriptHost(this.env).getScript(project);
        const removing = durableObjectBindings(script?.bindings ?? []);
        if (removing.length === 0) return { stored: false, bindings: 0 };
        const [insert] = await this.env.DB.batch([
          this.env.DB.prepare(
            `INSERT INTO do_enforcement (project_id, removed_bindings, wall_ms, threshold_ms, enforced_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT(project_id) DO NOTHING`,
          ).bind(project, JSON.stringify(removing), Math.round(wallMs), thresholdMs, now),
          auditStatement(this.env.DB, {
            id: `${enforcementInstanceId(now)}:${project}:applied`,
            type: "enforcement.applied",
            actor: "system",
            projectId: project,
            details: { wall_ms: Math.round(wallMs), threshold_ms: thresholdMs, bindings: removing.map((b) => b.name) },
          }),
        ]);
        return { stored: (insert?.meta.changes ?? 0) > 0, bindings: removing.length };
      });
      if (recorded.bindings === 0) continue;
      await step.do(`${STEP_REMOVE_PREFIX} ${project}`, STEP_CONFIG, async () => {
        const host = scriptHost(this.env);
        const script = await host.getScript(project);
        const keep = (script?.bindings ?? []).filter((binding) => binding.type !== "durable_object_namespace");
        const removed = (script?.bindings.length ?? 0) - keep.length;
        if (script && removed > 0) await host.setBindings(project, keep);
        fault("workflow.step.after_effect", { step: `${STEP_REMOVE_PREFIX} ${project}` });
        log.warn("enforcement_applied", {
          project_id: project,
          wall_ms: Math.round(wallMs),
          threshold_ms: thresholdMs,
          removed,
        });
        return { removed };
      });
      enforced.push(project);
    }
    return { projects: found.projects, over: found.over.length, enforced, thresholdMs };
  }
}

/**
 * Starts the enforcement cycle for `time`; a cycle already started (an overlapping trigger) is
 * not started again. Returns the instance id and whether this call created it.
 */
export async function startEnforcement(
  env: Env,
  time: number,
  options: { trigger: "cron" | "manual"; thresholdMs?: number; id?: string },
): Promise<{ id: string; created: boolean }> {
  const id = options.id ?? enforcementInstanceId(time);
  try {
    await env.ENFORCEMENT_WORKFLOW.create({
      id,
      params: {
        now: time,
        trigger: options.trigger,
        ...(options.thresholdMs === undefined ? {} : { thresholdMs: options.thresholdMs }),
      },
    });
    return { id, created: true };
  } catch (error) {
    if (/already.?exists/i.test(describeError(error))) return { id, created: false };
    throw error;
  }
}
