import { describe, it } from "vitest";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import {
  type DeployStatusBody,
  deployAndWait,
  postDeploy,
  projectId,
  sampleManifest,
  tenantJson,
  waitForDeploy,
} from "./deploy-helpers.ts";

/**
 * A deploy is complete only when the new version starts (as Cloudflare's upload validation
 * checks it): a version that throws at top level, carries bad wasm or imports a module that is
 * not there ends `errored` with the runtime's message, and the previous version keeps serving.
 */

/** Deploys the sample tenant's v2 with `src/version.js` replaced and extra modules; waits for the end. */
async function deployV2(project: string, versionJs: string, extra: DeployManifest["modules"] = []) {
  const manifest = sampleManifest(project, "v2");
  const modules = manifest.modules.map((module) =>
    module.name === "src/version.js" ? { ...module, content: versionJs } : module,
  );
  const response = await postDeploy({ ...manifest, modules: [...modules, ...extra] });
  if (response.status !== 202) throw new Error(`deploy → ${response.status}: ${await response.text()}`);
  return waitForDeploy((await response.json<{ deploy_id: string }>()).deploy_id);
}

function stepNames(status: DeployStatusBody): string[] {
  return status.steps.map((step) => step.name);
}

describe("check startup", () => {
  it("a Worker that throws at top level: the deploy is errored with the runtime's message, the old version serves", async ({
    expect,
  }) => {
    const project = projectId("boot");
    await deployAndWait(sampleManifest(project, "v1"));
    expect(await tenantJson(project, "/counter/a")).toEqual({ count: 1, version: "v1" });

    const status = await deployV2(
      project,
      'throw new Error("config missing: set API_URL");\nexport const VERSION = "v2";\n',
    );
    expect(status.status).toBe("errored");
    expect(status.error).toContain("config missing: set API_URL");
    expect(status.steps.find((step) => step.name === "check startup")).toMatchObject({ state: "errored" });
    expect(stepNames(status)).not.toContain("upload");

    expect(await tenantJson(project, "/counter/a")).toEqual({ count: 2, version: "v1" });
  });

  it("importing a module that was not uploaded, or invalid wasm, fails the same way", async ({ expect }) => {
    const project = projectId("boot-mod");
    await deployAndWait(sampleManifest(project, "v1"));

    const missing = await deployV2(project, 'export { VERSION } from "./generated/version.js";\n');
    expect(missing.status).toBe("errored");
    expect(missing.error).toContain('No such module "src/generated/version.js"');

    const wasm = await deployV2(project, 'export const VERSION = "v2";\n', [
      { name: "src/lib.wasm", type: "wasm", content: btoa("not wasm at all") },
    ]);
    expect(wasm.status).toBe("errored");
    expect(wasm.error).toContain("expected magic word 00 61 73 6d");
    expect(stepNames(wasm)).not.toContain("upload");

    expect(await tenantJson(project, "/hello")).toEqual({ message: "hello v1", version: "v1" });
  });
});
