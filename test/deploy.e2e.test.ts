import { env, exports } from "cloudflare:workers";
import { describe, it, vi } from "vitest";
import { ADMIN, BASE_URL, deployAndWait, projectId, sampleManifest, tenant, tenantJson } from "./deploy-helpers.ts";

describe("deploy lifecycle end to end (local platform)", () => {
  it("sign and post the sample tenant → workflow completes → counts 1, 2, 3 → v2 continues → rollback continues → usage metered", async ({
    expect,
  }) => {
    const project = projectId("e2e");
    const first = await deployAndWait(sampleManifest(project, "v1"));
    expect(first.steps.map((step) => [step.name, step.state])).toEqual([
      ["load project", "complete"],
      ["generate metering wrapper", "complete"],
      ["assemble modules", "complete"],
      ["compute migration", "complete"],
      ["check startup", "complete"],
      ["upload", "complete"],
      ["record deployment", "complete"],
      ["clear enforcement", "complete"],
    ]);
    expect(first.migration).toMatchObject({ kind: "migrate" });

    expect(await tenantJson(project, "/hello")).toEqual({ message: "hello v1", version: "v1" });
    for (const expected of [1, 2, 3]) {
      expect(await tenantJson(project, "/counter/main")).toEqual({ count: expected, version: "v1" });
    }

    const second = await deployAndWait(sampleManifest(project, "v2"));
    expect(second.migration).toMatchObject({ kind: "none" });
    expect(await tenantJson(project, "/counter/main")).toEqual({ count: 4, version: "v2" });
    expect(await tenantJson(project, "/counter/main/rpc")).toMatchObject({ count: 5, via: "rpc" });

    const rollback = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}/rollback`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(rollback.status).toBe(202);
    const { deploy_id } = await rollback.json<{ deploy_id: string }>();
    await vi.waitUntil(
      async () => {
        const status = await (
          await exports.default.fetch(`${BASE_URL}/v1/deploys/${deploy_id}`, { headers: ADMIN })
        ).json<{
          status: string;
        }>();
        return status.status === "complete";
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(await tenantJson(project, "/counter/main")).toEqual({ count: 6, version: "v1" });

    // One usage data point per Durable Object invocation (5 fetches + 1 RPC), through the pipeline.
    await vi.waitUntil(
      async () =>
        (
          await env.DB.prepare("SELECT COUNT(*) AS n FROM runtime_events WHERE project_id = ? AND type = 'do_usage'")
            .bind(project)
            .first<{ n: number }>()
        )?.n === 6,
      { timeout: 15_000, interval: 200 },
    );
    const { results } = await env.DB.prepare(
      "SELECT json_extract(data, '$.handler') AS handler, COUNT(*) AS n FROM runtime_events WHERE project_id = ? AND type = 'do_usage' GROUP BY 1 ORDER BY 1",
    )
      .bind(project)
      .all<{ handler: string; n: number }>();
    expect(results).toEqual([
      { handler: "fetch", n: 5 },
      { handler: "rpc:increment", n: 1 },
    ]);

    const status = await (await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, { headers: ADMIN })).json();
    expect(status).toMatchObject({
      project_id: project,
      has_durable_objects: true,
      do_classes: ["Counter"],
      do_migration_tag: "v1",
      do_enforcement_status: "none",
    });
    expect((await tenant(project, "/nope")).status).toBe(404);
  });
});
