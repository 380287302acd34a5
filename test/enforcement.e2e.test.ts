import { createScheduledController } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import worker from "../index.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { LocalScriptHost } from "../platform/local/local-script-host.ts";
import { CYCLE_MS, STEP_REMOVE_PREFIX, enforcementInstanceId } from "../workflows/enforcement.workflow.ts";
import { ADMIN, BASE_URL, deployAndWait, projectId, sampleManifest, tenant, tenantJson } from "./deploy-helpers.ts";
import { api, runEnforcement } from "./helpers.ts";

afterEach(() => disarmFaults());

/** Waits until the project's metered Durable Object time (do_usage events) reached `minMs`. */
async function waitForUsage(project: string, minMs: number): Promise<void> {
  await vi.waitUntil(
    async () => {
      const row = await env.DB.prepare(
        "SELECT COALESCE(SUM(json_extract(data, '$.wall_ms')), 0) AS ms FROM runtime_events WHERE project_id = ? AND type = 'do_usage'",
      )
        .bind(project)
        .first<{ ms: number }>();
      return (row?.ms ?? 0) >= minMs;
    },
    { timeout: 15_000, interval: 200 },
  );
}

function doUsage(project: string) {
  return api().call("getDoUsage", { params: { id: project } });
}

describe("metering and enforcement", () => {
  it("over budget → DO route 503 do_binding_removed, plain route 200 → redeploy restores and the counter continues", async ({
    expect,
  }) => {
    const project = projectId("enforce");
    await deployAndWait(sampleManifest(project));
    for (let i = 1; i <= 3; i++) {
      expect(await tenantJson(project, "/counter/main?work=30")).toMatchObject({ count: i });
    }
    await waitForUsage(project, 60);

    const run = await runEnforcement(50);
    expect(run.output?.enforced).toContain(project);
    expect(await doUsage(project)).toMatchObject({
      do_enforcement_status: "enforced",
      removed_bindings: [{ name: "COUNTER" }],
    });
    expect((await doUsage(project)).wall_ms).toBeGreaterThanOrEqual(60);
    expect(await api().call("getProject", { params: { id: project } })).toMatchObject({
      do_enforcement_status: "enforced",
    });

    const blocked = await tenant(project, "/counter/main");
    expect(blocked.status).toBe(503);
    expect(await blocked.json()).toMatchObject({ error: { code: "do_binding_removed" } });
    expect((await tenant(project, "/hello")).status).toBe(200);

    // A second run does not enforce it again (it is already enforced).
    expect((await runEnforcement(50)).output?.enforced).not.toContain(project);

    await deployAndWait(sampleManifest(project, "v2"));
    expect(await tenantJson(project, "/counter/main")).toMatchObject({ count: 4, version: "v2" });
    expect(await doUsage(project)).toMatchObject({ do_enforcement_status: "none", removed_bindings: [] });
    const audit = await env.DB.prepare(
      "SELECT type FROM audit_log WHERE project_id = ? AND type LIKE 'enforcement.%' ORDER BY at",
    )
      .bind(project)
      .all<{ type: string }>();
    expect(audit.results.map((row) => row.type)).toEqual(["enforcement.applied", "enforcement.cleared"]);
  });

  it("on-call restore puts the bindings back; restoring twice is 409", async ({ expect }) => {
    const project = projectId("restore");
    await deployAndWait(sampleManifest(project));
    await tenantJson(project, "/counter/a?work=40");
    await waitForUsage(project, 30);
    await runEnforcement(10);
    expect((await tenant(project, "/counter/a")).status).toBe(503);
    expect(await api().call("restoreEnforcement", { params: { id: project } })).toMatchObject({
      restored: ["COUNTER"],
    });
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 2 });
    await expect(api().call("restoreEnforcement", { params: { id: project } })).rejects.toMatchObject({
      status: 409,
      code: "not_enforced",
    });
  });

  it("a remove step retried after its effect changes nothing: bindings stored once, removed once", async ({
    expect,
  }) => {
    const project = projectId("retry");
    await deployAndWait(sampleManifest(project));
    await tenantJson(project, "/counter/a?work=40");
    await waitForUsage(project, 30);
    const fired = armFault("workflow.step.after_effect", {
      times: 1,
      when: ({ step }) => step === `${STEP_REMOVE_PREFIX} ${project}`,
    });
    const run = await runEnforcement(10);
    expect(fired()).toBe(1);
    expect(run.output?.enforced).toContain(project);
    // The stored bindings are the ones removed, not the empty list a retry would see.
    expect(await doUsage(project)).toMatchObject({ removed_bindings: [{ name: "COUNTER" }] });
    const bindings = (await new LocalScriptHost(env).getScript(project))?.bindings ?? [];
    expect(bindings.filter((binding) => binding.type === "durable_object_namespace")).toEqual([]);
    const applied = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_log WHERE project_id = ? AND type = 'enforcement.applied'",
    )
      .bind(project)
      .first<{ n: number }>();
    expect(applied?.n).toBe(1);
  });

  it("overlapping cron triggers in one 5-minute window start one enforcement cycle", async ({ expect }) => {
    const scheduledTime = Math.floor(Date.now() / CYCLE_MS) * CYCLE_MS + 1_000;
    const controller = createScheduledController({ scheduledTime, cron: "*/5 * * * *" });
    const again = createScheduledController({ scheduledTime: scheduledTime + 30_000, cron: "*/5 * * * *" });
    await worker.scheduled(controller, env);
    await worker.scheduled(again, env);
    const instance = await env.ENFORCEMENT_WORKFLOW.get(enforcementInstanceId(scheduledTime));
    await vi.waitUntil(async () => (await instance.status()).status === "complete", { timeout: 20_000, interval: 100 });
    expect(enforcementInstanceId(scheduledTime)).toBe(enforcementInstanceId(scheduledTime + 30_000));
    const other = enforcementInstanceId(scheduledTime + CYCLE_MS);
    await expect(env.ENFORCEMENT_WORKFLOW.get(other)).rejects.toThrow();
  });

  it("do-usage needs the admin token and a known project", async ({ expect }) => {
    expect((await exports.default.fetch(`${BASE_URL}/v1/projects/nope/do-usage`, { headers: ADMIN })).status).toBe(404);
    expect((await exports.default.fetch(`${BASE_URL}/v1/projects/nope/do-usage`)).status).toBe(401);
  });
});
