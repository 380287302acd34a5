import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  introspectWorkflowInstance,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import worker from "../index.ts";
import { insertDeployStatement } from "../lib/deploys.d1.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { LocalScriptHost } from "../platform/local/local-script-host.ts";
import { WEBHOOK_TOLERANCE_S } from "../producers/webhook.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import { STEP_RECORD, STEP_UPLOAD } from "../workflows/deploy.workflow.ts";
import {
  ADMIN,
  BASE_URL,
  deployAndWait,
  postDeploy,
  projectId,
  sampleManifest,
  tenant,
  tenantJson,
  waitForDeploy,
} from "./deploy-helpers.ts";
import { QUEUES } from "../lib/queues.ts";
import { deployArtifacts } from "../platform/local/deploy-artifacts.do.ts";

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

async function deployRows(project: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM deploys WHERE project_id = ?")
    .bind(project)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function auditCount(project: string, type: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE project_id = ? AND type = ?")
    .bind(project, type)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** Starts a deploy the way the webhook + consumer do, but with a known id so a test can introspect it. */
async function startDeploy(manifest: DeployManifest) {
  const id = crypto.randomUUID();
  await deployArtifacts(env, id).put(JSON.stringify(manifest));
  await insertDeployStatement(env.DB, { id, projectId: manifest.project_id, kind: "deploy" }).run();
  const instance = await introspectWorkflowInstance(env.DEPLOY_WORKFLOW, id);
  await instance.modify(async (m) => {
    await m.disableRetryDelays();
  });
  return { id, instance };
}

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

describe("deploy path reliability", () => {
  it("row 14: upload retried after its side effect → one migration, one record, one audit entry", async ({
    expect,
  }) => {
    const project = projectId("row14");
    const fired = armFault("workflow.step.after_effect", { times: 1, when: ({ step }) => step === STEP_UPLOAD });
    const { id, instance } = await startDeploy(sampleManifest(project));
    await env.DEPLOY_WORKFLOW.create({ id, params: { deployId: id, projectId: project, kind: "deploy" } });
    await instance.waitForStatus("complete");
    await instance.dispose();
    expect(fired()).toBe(1);
    const status = await waitForDeploy(id);
    const upload = status.steps.find((step) => step.name === STEP_UPLOAD);
    // The retried upload met the already-moved live tag and recomputed: no second migration.
    expect(upload).toMatchObject({ state: "complete", attempts: 2, output: { migrationTag: "v1", recomputed: 1 } });
    expect(await new LocalScriptHost(env).getScript(project)).toMatchObject({ migrationTag: "v1" });
    expect(await auditCount(project, "deploy.completed")).toBe(1);
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 1 });
  });

  it("row 14: a step that fails before acting (mockStepError) is retried and the deploy completes once", async ({
    expect,
  }) => {
    const project = projectId("row14b");
    const { id, instance } = await startDeploy(sampleManifest(project));
    await instance.modify(async (m) => {
      await m.mockStepError({ name: STEP_RECORD }, new Error("D1 unavailable"), 1);
    });
    await env.DEPLOY_WORKFLOW.create({ id, params: { deployId: id, projectId: project, kind: "deploy" } });
    await instance.waitForStatus("complete");
    await instance.dispose();
    expect(await auditCount(project, "deploy.completed")).toBe(1);
    const row = await env.DB.prepare("SELECT current_deploy_id FROM projects WHERE id = ?").bind(project).first();
    expect(row).toEqual({ current_deploy_id: id });
  });

  it("row 14: the deploy's `complete` write fails once after the upload → retried, complete exactly once", async ({
    expect,
  }) => {
    const project = projectId("row14c");
    const fired = armFault("deploy.status", {
      times: 1,
      when: ({ status }) => status === "complete",
      error: () => new Error("D1_ERROR: D1 is overloaded"),
    });
    const { id, instance } = await startDeploy(sampleManifest(project));
    await env.DEPLOY_WORKFLOW.create({ id, params: { deployId: id, projectId: project, kind: "deploy" } });
    await instance.waitForStatus("complete");
    await instance.dispose();
    expect(fired()).toBe(1);
    const deploy = await env.DB.prepare("SELECT status, error FROM deploys WHERE id = ?").bind(id).first();
    expect(deploy).toEqual({ status: "complete", error: null });
    expect(await auditCount(project, "deploy.completed")).toBe(1);
    expect(await auditCount(project, "deploy.failed")).toBe(0);
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 1 });
  });

  it("row 15: the same webhook-id twice starts one deploy, and the second answer repeats the first", async ({
    expect,
  }) => {
    const project = projectId("row15");
    const manifest = sampleManifest(project);
    const webhookId = `msg_${crypto.randomUUID()}`;
    const first = await postDeploy(manifest, { id: webhookId });
    const second = await postDeploy(manifest, { id: webhookId });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    const a = await first.json<{ deploy_id: string }>();
    const b = await second.json<{ deploy_id: string }>();
    expect(b.deploy_id).toBe(a.deploy_id);
    expect((await waitForDeploy(a.deploy_id)).status).toBe("complete");
    expect(await deployRows(project)).toBe(1);
  });

  it("row 15: the deploy message delivered twice → the second create finds the instance and acks", async ({
    expect,
  }) => {
    const project = projectId("row15b");
    const status = await deployAndWait(sampleManifest(project));
    const body = envelope("deploys.requested", {
      deploy_id: status.deploy_id,
      project_id: project,
      kind: "deploy",
      source_deploy_id: null,
    });
    const batch = createMessageBatch(QUEUES.deploys.name, [
      { id: "redelivered", timestamp: new Date(), attempts: 2, body },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["redelivered"]);
    expect(result.retryMessages).toEqual([]);
    expect(await deployRows(project)).toBe(1);
    expect(await auditCount(project, "deploy.completed")).toBe(1);
  });

  it("row 16: stale, future, forged and tampered webhooks → 401, nothing enqueued", async ({ expect }) => {
    const project = projectId("row16");
    const sends = vi.spyOn(env.DEPLOYS_QUEUE, "send");
    const batches = vi.spyOn(env.DEPLOYS_QUEUE, "sendBatch");
    const manifest = sampleManifest(project);
    // Well past the tolerance, so a slow run crossing a second cannot bring either back inside it.
    const cases = [
      await postDeploy(manifest, { timestamp: nowS() - WEBHOOK_TOLERANCE_S - 60 }),
      await postDeploy(manifest, { timestamp: nowS() + WEBHOOK_TOLERANCE_S + 60 }),
      await postDeploy(manifest, { secret: "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==" }),
      await postDeploy(manifest, { tamper: (raw) => raw.replace('"hello v1"', '"hello v9"') }),
    ];
    const unsigned = await exports.default.fetch(`${BASE_URL}/v1/deploys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(manifest),
    });
    for (const response of [...cases, unsigned]) {
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
    expect(sends).not.toHaveBeenCalled();
    expect(batches).not.toHaveBeenCalled();
    expect(await deployRows(project)).toBe(0);
  });

  it("row 17: oversized, malformed, wrong type, wrong field types, extra fields → 413/400/415, nothing enqueued", async ({
    expect,
  }) => {
    const project = projectId("row17");
    const batches = vi.spyOn(env.DEPLOYS_QUEUE, "sendBatch");
    const good = sampleManifest(project);
    const oversized = await exports.default.fetch(`${BASE_URL}/v1/deploys`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(26 * 1024 * 1024) },
      body: "{}",
    });
    expect(oversized.status).toBe(413);
    const wrongType = await exports.default.fetch(`${BASE_URL}/v1/deploys`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify(good),
    });
    expect(wrongType.status).toBe(415);
    const malformed = await postDeploy(good, { tamper: () => "{not json" });
    // Tampering changes the signed bytes: sign the malformed body itself instead.
    expect(malformed.status).toBe(401);
    for (const body of [
      "{not json",
      { ...good, modules: "nope" },
      { ...good, project_id: "Has Spaces" },
      { ...good, surprise: true },
      { ...good, config: { ...good.config, durable_objects: { bindings: [{ name: "X", class_name: "1bad" }] } } },
    ]) {
      const response = typeof body === "string" ? await postDeploy(body, { raw: true }) : await postDeploy(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      const error = await response.json<{ error: { code: string } }>();
      expect(["invalid_json", "invalid_body"]).toContain(error.error.code);
    }
    expect(batches).not.toHaveBeenCalled();
    expect(await deployRows(project)).toBe(0);
  });

  it("a class that vanished without a declared deletion is refused (data loss), and the old version keeps serving", async ({
    expect,
  }) => {
    const project = projectId("loss");
    await deployAndWait(sampleManifest(project));
    const response = await postDeploy(
      sampleManifest(project, "v2", {
        config: { durable_objects: { bindings: [] }, migrations: [{ tag: "v1", new_sqlite_classes: ["Counter"] }] },
      }),
    );
    const { deploy_id } = await response.json<{ deploy_id: string }>();
    const status = await waitForDeploy(deploy_id);
    expect(status.status).toBe("errored");
    expect(status.error).toMatch(/Counter/);
    expect(await tenantJson(project, "/hello")).toMatchObject({ version: "v1" });
  });

  it("the live tag moved behind Shipyard's back → the upload re-reads it and recomputes (a retry, not a failure)", async ({
    expect,
  }) => {
    const project = projectId("drift");
    await deployAndWait(sampleManifest(project));
    const host = new LocalScriptHost(env);
    const live = await host.getScript(project);
    expect(live?.migrationTag).toBe("v1");
    const manifest = sampleManifest(project, "v2", {
      config: {
        ...sampleManifest(project).config,
        durable_objects: {
          bindings: [
            { name: "COUNTER", class_name: "Counter" },
            { name: "EXTRA", class_name: "Extra" },
          ],
        },
        migrations: [
          { tag: "v1", new_sqlite_classes: ["Counter"] },
          { tag: "v2", new_sqlite_classes: ["Extra"] },
        ],
      },
    });
    const source = manifest.modules[0];
    if (!source) throw new Error("no module");
    manifest.modules[0] = { ...source, content: `${source.content}\nexport class Extra {}\n` };
    const status = await deployAndWait(manifest);
    expect(status.migration).toMatchObject({ kind: "migrate", tag: "v2" });
    expect((await host.getScript(project))?.migrationTag).toBe("v2");
    // Shipyard's record lags the platform (as after a lost write, or a change made directly on the
    // platform): the plan is made from v1, the platform answers that the live tag is v2.
    await env.DB.prepare("UPDATE projects SET do_migration_tag = 'v1', do_classes = '[\"Counter\"]' WHERE id = ?")
      .bind(project)
      .run();
    const again = await deployAndWait({ ...manifest, modules: [...manifest.modules] });
    const upload = again.steps.find((step) => step.name === STEP_UPLOAD);
    expect(upload?.output).toMatchObject({ migrationTag: "v2", recomputed: 1 });
    expect(await tenantJson(project, "/counter/x")).toMatchObject({ count: 1 });
  });

  it("a removed Durable Object binding answers 503 do_binding_removed on its routes; other routes keep working", async ({
    expect,
  }) => {
    const project = projectId("removed");
    await deployAndWait(sampleManifest(project));
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 1 });
    const host = new LocalScriptHost(env);
    const script = await host.getScript(project);
    await host.setBindings(
      project,
      (script?.bindings ?? []).filter((binding) => binding.type !== "durable_object_namespace"),
    );
    const blocked = await tenant(project, "/counter/a");
    expect(blocked.status).toBe(503);
    expect(blocked.headers.get("retry-after")).toBeTruthy();
    expect(await blocked.json()).toMatchObject({
      error: { code: "do_binding_removed", details: { bindings: ["COUNTER"] } },
    });
    expect(await tenantJson(project, "/hello")).toMatchObject({ version: "v1" });
    // Putting the binding back restores the route, with its storage intact.
    await host.setBindings(project, script?.bindings ?? []);
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 2 });
  });

  it("down: 409 names the classes at stake; with ?confirm the script goes and the project is soft-deleted", async ({
    expect,
  }) => {
    const project = projectId("down");
    await deployAndWait(sampleManifest(project));
    const refused = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({
      error: { code: "confirmation_required", details: { do_classes: ["Counter"] } },
    });
    const confirmed = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}?confirm=${project}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(confirmed.status).toBe(202);
    const { deploy_id } = await confirmed.json<{ deploy_id: string }>();
    expect((await waitForDeploy(deploy_id)).status).toBe("complete");
    expect((await tenant(project, "/hello")).status).toBe(404);
    const status = await (await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, { headers: ADMIN })).json();
    expect(status).toMatchObject({ status: "deleted", do_classes: [], has_durable_objects: false });
    // Deploying again starts from empty storage.
    await deployAndWait(sampleManifest(project));
    expect(await tenantJson(project, "/counter/a")).toMatchObject({ count: 1 });
  });

  it("rollback without a previous deploy is 409; unknown deploys and projects are 404", async ({ expect }) => {
    const project = projectId("norollback");
    await deployAndWait(sampleManifest(project));
    const rollback = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}/rollback`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(rollback.status).toBe(409);
    expect((await exports.default.fetch(`${BASE_URL}/v1/deploys/nope`, { headers: ADMIN })).status).toBe(404);
    expect((await exports.default.fetch(`${BASE_URL}/v1/projects/nope`, { headers: ADMIN })).status).toBe(404);
    expect(
      (await exports.default.fetch(`${BASE_URL}/v1/projects`, { headers: { authorization: "Bearer dev-ingest-key" } }))
        .status,
    ).toBe(403);
  });
});
