/**
 * Deploys authorised per project (issue 13, docs/reliability-tenants.md rows T4.*): each project's
 * first deploy, signed with the shared webhook secret, creates its own deploy secret and answers it
 * once; every later deploy must be signed with that secret; the shared secret and another
 * project's secret are 401 and audited (`deploy.refused`); a rotation retires the old secret.
 */
import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import {
  ADMIN,
  BASE_URL,
  WEBHOOK_SECRET,
  deploySecretOf,
  postDeploy,
  projectId,
  rememberDeploySecret,
  sampleManifest,
  waitForDeploy,
} from "./deploy-helpers.ts";

interface Accepted {
  deploy_id: string;
  deploy_secret?: string;
  duplicate?: boolean;
}

async function deployRows(project: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM deploys WHERE project_id = ?")
    .bind(project)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

interface AuditRow {
  type: string;
  actor: string;
  details: string;
}

async function auditRows(project: string, type: string): Promise<AuditRow[]> {
  const { results } = await env.DB.prepare(
    "SELECT type, actor, details FROM audit_log WHERE project_id = ? AND type = ? ORDER BY at",
  )
    .bind(project, type)
    .all<AuditRow>();
  return results;
}

/** Every audit entry of the project, as one text: a secret must appear nowhere in it. */
async function auditText(project: string): Promise<string> {
  const { results } = await env.DB.prepare("SELECT type, actor, details FROM audit_log WHERE project_id = ?")
    .bind(project)
    .all<AuditRow>();
  return JSON.stringify(results);
}

/** Creates the project with a first deploy and waits for it; answers its new secret. */
async function created(project: string): Promise<string> {
  const response = await postDeploy(sampleManifest(project, "v1"));
  if (response.status !== 202) throw new Error(`first deploy → ${response.status}: ${await response.text()}`);
  const answer = await response.json<Accepted>();
  if ((await waitForDeploy(answer.deploy_id)).status !== "complete") throw new Error("first deploy did not complete");
  if (answer.deploy_secret === undefined) throw new Error("the first deploy returned no deploy_secret");
  return answer.deploy_secret;
}

function rotate(project: string): Promise<Response> {
  return exports.default.fetch(`${BASE_URL}/v1/projects/${project}/deploy-secret/rotate`, {
    method: "POST",
    headers: ADMIN,
  });
}

describe("deploys authorised per project", () => {
  it("T4.1 the first deploy creates the project's deploy secret and answers it once", async ({ expect }) => {
    const project = projectId("t41");
    const secret = await created(project);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(atob(secret.slice("whsec_".length))).toHaveLength(32);
    expect(deploySecretOf(project)).toBe(secret);

    // A later deploy (signed with it) answers no secret; nor does the project's status.
    const again = await postDeploy(sampleManifest(project, "v2"));
    expect(again.status).toBe(202);
    expect(await again.clone().json<Accepted>()).not.toHaveProperty("deploy_secret");
    const status = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, { headers: ADMIN });
    expect(await status.text()).not.toContain(secret);
    // Never in the audit trail.
    expect(await auditText(project)).not.toContain(secret.slice("whsec_".length));
  });

  it("T4.2 a redeploy signed with the project's own secret is 202, audited as its deploy key", async ({ expect }) => {
    const project = projectId("t42");
    const secret = await created(project);
    const response = await postDeploy(sampleManifest(project, "v2"), { secret });
    expect(response.status).toBe(202);
    expect((await waitForDeploy((await response.json<Accepted>()).deploy_id)).status).toBe("complete");
    const requested = await auditRows(project, "deploy.requested");
    expect(requested.map((row) => row.actor)).toEqual(["webhook", `deploy-key:${project}`]);
  });

  it("T4.3 a redeploy signed with the shared secret is 401, nothing enqueued, audited deploy.refused", async ({
    expect,
  }) => {
    const project = projectId("t43");
    await created(project);
    const response = await postDeploy(sampleManifest(project, "v2"), {
      secret: WEBHOOK_SECRET,
      headers: { "CF-Connecting-IP": "203.0.113.7" },
    });
    expect(response.status).toBe(401);
    const body = await response.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.message).toContain("only creates projects");
    expect(await deployRows(project)).toBe(1);
    const refused = await auditRows(project, "deploy.refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]?.actor).toBe("webhook");
    expect(JSON.parse(refused[0]?.details ?? "{}")).toMatchObject({
      project,
      reason: "shared_secret",
      signed_by: "shared",
      // Locally the source is the socket, never a client-supplied CF-Connecting-IP.
      source: "socket:loopback",
    });
  });

  it("T4.4 project A's secret for project B is 401 and the audit names A", async ({ expect }) => {
    const a = projectId("t44a");
    const b = projectId("t44b");
    const secretA = await created(a);
    await created(b);
    const manifest = sampleManifest(b, "v2");
    // The sender claims (shipyard-key-id) the key it signed with; Shipyard verifies the claim.
    const claimed = await postDeploy(manifest, { secret: secretA, headers: { "shipyard-key-id": a } });
    // Without the claim the signature is simply not B's.
    const unclaimed = await postDeploy(manifest, { secret: secretA });
    // A false claim (A named, but signed with some other secret) is not believed.
    const falseClaim = await postDeploy(manifest, {
      secret: "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==",
      headers: { "shipyard-key-id": a },
    });
    expect([claimed.status, unclaimed.status, falseClaim.status]).toEqual([401, 401, 401]);
    expect(await deployRows(b)).toBe(1);
    const refused = (await auditRows(b, "deploy.refused")).map((row) => ({
      actor: row.actor,
      ...z.record(z.string(), z.unknown()).parse(JSON.parse(row.details)),
    }));
    expect(refused).toEqual([
      expect.objectContaining({
        actor: `deploy-key:${a}`,
        project: b,
        reason: "other_project_secret",
        signed_by: a,
        claimed_key_id: a,
      }),
      expect.objectContaining({ actor: "unknown", reason: "bad_signature", signed_by: null, claimed_key_id: null }),
      expect.objectContaining({ actor: "unknown", reason: "bad_signature", signed_by: null, claimed_key_id: a }),
    ]);
    expect(JSON.stringify(refused)).not.toContain(secretA.slice("whsec_".length));
  });

  it("T4.5 rotation: the new secret is answered once, the old one is 401, the new one 202", async ({ expect }) => {
    const project = projectId("t45");
    const old = await created(project);
    const response = await rotate(project);
    expect(response.status).toBe(200);
    const rotated = await response.json<{ project_id: string; deploy_secret: string; rotated_at: number }>();
    expect(rotated.project_id).toBe(project);
    expect(rotated.deploy_secret).toMatch(/^whsec_/);
    expect(rotated.deploy_secret).not.toBe(old);

    expect((await postDeploy(sampleManifest(project, "v2"), { secret: old })).status).toBe(401);
    rememberDeploySecret(project, rotated.deploy_secret);
    const fresh = await postDeploy(sampleManifest(project, "v2"));
    expect(fresh.status).toBe(202);
    expect((await waitForDeploy((await fresh.json<Accepted>()).deploy_id)).status).toBe("complete");

    const audited = await auditRows(project, "deploy_secret.rotated");
    expect(audited).toHaveLength(1);
    expect(audited[0]?.actor).toMatch(/^admin:/);
    expect(await auditText(project)).not.toContain(rotated.deploy_secret.slice("whsec_".length));
    // An unknown project has nothing to rotate.
    expect((await rotate(projectId("t45-none"))).status).toBe(404);
  });

  it("T4.6 the creating delivery twice is one deploy, and its retry repeats the secret", async ({ expect }) => {
    const project = projectId("t46");
    const manifest = sampleManifest(project, "v1");
    const id = `msg_${crypto.randomUUID()}`;
    const first = await postDeploy(manifest, { id, secret: WEBHOOK_SECRET });
    const second = await postDeploy(manifest, { id, secret: WEBHOOK_SECRET });
    expect([first.status, second.status]).toEqual([202, 202]);
    const a = await first.json<Accepted>();
    const b = await second.json<Accepted>();
    expect(b.deploy_id).toBe(a.deploy_id);
    expect(b.duplicate).toBe(true);
    expect(b.deploy_secret).toBe(a.deploy_secret);
    expect((await waitForDeploy(a.deploy_id)).status).toBe("complete");
    expect(await deployRows(project)).toBe(1);
    // A new delivery with the shared secret is refused: only the creating delivery has that grace…
    expect((await postDeploy(sampleManifest(project, "v2"), { secret: WEBHOOK_SECRET })).status).toBe(401);
    // …and a rotation ends it for that delivery too.
    expect((await rotate(project)).status).toBe(200);
    expect((await postDeploy(manifest, { id, secret: WEBHOOK_SECRET })).status).toBe(401);
  });

  it("T4.8 once the project's own secret signed a deploy, the creating delivery's retry no longer repeats it", async ({
    expect,
  }) => {
    const project = projectId("t48");
    const manifest = sampleManifest(project, "v1");
    const id = `msg_${crypto.randomUUID()}`;
    const first = await postDeploy(manifest, { id, secret: WEBHOOK_SECRET });
    expect(first.status).toBe(202);
    const secret = (await first.json<Accepted>()).deploy_secret;
    // Still the sender's retry: the answer, secret included.
    expect((await (await postDeploy(manifest, { id, secret: WEBHOOK_SECRET })).json<Accepted>()).deploy_secret).toBe(
      secret,
    );
    // The owner deploys with it: the secret is in the right hands, the grace ends.
    expect((await postDeploy(sampleManifest(project, "v2"), { secret })).status).toBe(202);
    const replay = await postDeploy(manifest, { id, secret: WEBHOOK_SECRET });
    expect(replay.status).toBe(401);
    expect(await replay.text()).not.toContain(secret?.slice("whsec_".length) ?? "none");
    const refused = await auditRows(project, "deploy.refused");
    expect(refused.map((row) => z.object({ reason: z.string() }).parse(JSON.parse(row.details)).reason)).toEqual([
      "shared_secret",
    ]);
  });

  it("T4.7 two first deploys racing with the shared secret: one creates the project, the other is 401", async ({
    expect,
  }) => {
    const project = projectId("t47");
    const responses = await Promise.all([
      postDeploy(sampleManifest(project, "v1"), { secret: WEBHOOK_SECRET }),
      postDeploy(sampleManifest(project, "v1"), { secret: WEBHOOK_SECRET }),
    ]);
    expect(responses.map((response) => response.status).toSorted((x, y) => x - y)).toEqual([202, 401]);
    expect(await deployRows(project)).toBe(1);
  });
});
