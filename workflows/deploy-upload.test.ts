/**
 * The deploy workflow's upload step (workflows/deploy-upload.ts) with the real CloudflareScriptHost
 * against the strict fake API: the documented recovery from a migration tag mismatch (re-read the
 * live tag, recompute, upload again) in both 10079 wordings, and refusals that end the deploy with
 * an error naming their cause (a syntax error; a rollback to a version that no longer exports a
 * class with live objects, 10064).
 */
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { CloudflareScriptHost } from "../platform/cloudflare-script-host.ts";
import { assemble, planMigration } from "../platform/deploy-plan.ts";
import { type DeployManifest, DeployManifestSchema } from "../schemas/deploy.schema.ts";
import { control } from "../test/fake-cf-control.ts";
import { FAKE_CF_API_TOKEN } from "../test/fake-cloudflare-api/protocol.ts";
import { type UploadInput, uploadRecomputingMigration } from "./deploy-upload.ts";

const host = new CloudflareScriptHost({
  accountId: "acct-test",
  namespace: "shipyard-tenants-test",
  apiToken: FAKE_CF_API_TOKEN,
  baseUrl: env.CF_API_BASE_URL,
  retries: { attempts: 2, baseDelayMs: 10, maxDelayMs: 1_000 },
});

const WITH_COUNTER = `import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {}
export default { fetch: () => new Response("v1") };
`;

function manifest(project: string, content: string, withCounter: boolean): DeployManifest {
  return DeployManifestSchema.parse({
    project_id: project,
    compatibility_date: "2026-11-01",
    main_module: "index.js",
    modules: [{ name: "index.js", type: "esm", content }],
    config: withCounter ? { durable_objects: { bindings: [{ name: "COUNTER", class_name: "Counter" }] } } : {},
  });
}

/** The step's input as the workflow builds it, from Shipyard's recorded tag and classes. */
function input(
  project: string,
  deployed: DeployManifest,
  stored: { tag: string | null; classes: string[] },
  rollback = false,
): UploadInput {
  return {
    deployId: `deploy-${crypto.randomUUID()}`,
    projectId: project,
    rollback,
    plan: assemble(deployed),
    manifest: deployed,
    migration: planMigration(deployed, stored.tag, stored.classes),
    resources: {},
  };
}

function projectName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

describe("the deploy's upload step against the strict fake API", () => {
  for (const wording of ["newer", "older"] as const) {
    it(`a tag mismatch (10079, ${wording} wording) is recovered: the live tag is re-read, the migration recomputed, the upload retried`, async ({
      expect,
    }) => {
      const project = projectName(`retag-${wording}`);
      if (wording === "older") await control({ action: "legacy_10079", script: project });
      const deployed = manifest(project, WITH_COUNTER, true);
      const first = await uploadRecomputingMigration(host, input(project, deployed, { tag: null, classes: [] }));
      expect(first).toMatchObject({ migrationTag: "shipyard-v1", classes: ["Counter"], recomputed: 0 });

      // Shipyard's record lost the tag (a crash after the upload landed): the plan is a first
      // migration again, which the platform refuses; the step recovers from the live tag.
      const again = await uploadRecomputingMigration(host, input(project, deployed, { tag: null, classes: [] }));
      expect(again).toMatchObject({ migrationTag: "shipyard-v1", classes: ["Counter"], recomputed: 1 });
      expect((await host.getScript(project))?.migrationTag).toBe("shipyard-v1");
    });
  }

  it("a version with a syntax error ends the deploy (NonRetryableError) with the cause named", async ({ expect }) => {
    const project = projectName("syntax");
    const broken = manifest(project, "export default { fetch() { return new Response('x') }", false);
    const failure = uploadRecomputingMigration(host, input(project, broken, { tag: null, classes: [] }));
    await expect(failure).rejects.toThrow(/Uncaught SyntaxError/);
    await expect(failure).rejects.toThrow(/does not start on Cloudflare/);
    await expect(failure).rejects.toMatchObject({ name: "NonRetryableError" });
  });

  it("T6.3 rollback to a version without a class that has live objects: 10064 ends it, the live version stays", async ({
    expect,
  }) => {
    const project = projectName("rollback");
    const current = manifest(project, WITH_COUNTER, true);
    const live = await uploadRecomputingMigration(host, input(project, current, { tag: null, classes: [] }));
    const older = manifest(project, 'export default { fetch: () => new Response("v0") };', false);
    // What the workflow's "compute migration" step plans for a rollback: none, the live classes kept.
    const rollback = {
      ...input(project, older, { tag: null, classes: [] }, true),
      migration: { kind: "none" as const, tag: "shipyard-v1", classes: ["Counter"] },
    };
    const failure = uploadRecomputingMigration(host, rollback);
    await expect(failure).rejects.toThrow(/10064 New version of script does not export class 'Counter'/);
    await expect(failure).rejects.toMatchObject({ name: "NonRetryableError" });
    expect((await host.getScript(project))?.versionId).toBe(live.versionId);
  });
});
