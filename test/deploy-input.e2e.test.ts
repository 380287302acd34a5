/**
 * Issue 12, deploy input: what a manifest carries besides code reaches the tenant for real on the
 * local platform — static assets with each html_handling / not_found_handling / run_worker_first
 * behaviour and the ASSETS binding, vars of every JSON type, secrets (bound, never in API answers
 * or the audit log) — and a binding Shipyard cannot host is a 400 naming it, with nothing enqueued.
 */
import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import type { AssetsConfig, DeployManifest } from "../schemas/deploy.schema.ts";
import { htmlAsset } from "./asset-file.ts";
import { ADMIN, BASE_URL, deployAndWait, postDeploy, projectId, waitForDeploy } from "./deploy-helpers.ts";

const SECRET = "s3cret-value-7f1c";

const WORKER = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/api/env") {
      return Response.json({
        greeting: env.GREETING,
        limits: env.LIMITS,
        enabled: env.ENABLED,
        ratio: env.RATIO,
        secret_matches: env.API_KEY === ${JSON.stringify(SECRET)},
        secret_type: typeof env.API_KEY,
      });
    }
    if (url.pathname === "/api/asset") {
      const asset = await env.ASSETS.fetch(new URL("/about.html", url));
      return Response.json({ status: asset.status, location: asset.headers.get("location"), text: await asset.text() });
    }
    if (request.method === "POST") return new Response("worker got " + (await request.text()));
    return new Response("worker " + url.pathname);
  },
};
`;

const FILES: Record<string, string> = {
  "/index.html": "home page",
  "/about.html": "about page",
  "/blog/index.html": "blog index",
  "/404.html": "custom 404",
};

async function assetFiles(): Promise<NonNullable<DeployManifest["assets"]>> {
  return Promise.all(Object.entries(FILES).map(([path, text]) => htmlAsset(path, text)));
}

async function manifest(project: string, assets: AssetsConfig): Promise<DeployManifest> {
  return {
    project_id: project,
    compatibility_date: "2026-11-01",
    main_module: "index.js",
    modules: [{ name: "index.js", type: "esm", content: WORKER }],
    config: {
      vars: { GREETING: "hi", LIMITS: { max: 3, tags: ["a", "b"] }, ENABLED: true, RATIO: 0.5 },
      secrets: { API_KEY: SECRET },
      assets: { binding: "ASSETS", ...assets },
    },
    assets: await assetFiles(),
  };
}

/**
 * `status body`, or `status → location` for a redirect, the tenant reached through Shipyard's
 * `/t/<project>` prefix (which the dispatcher puts in front of the assets' own Location).
 */
async function get(project: string, path: string, headers: HeadersInit = {}): Promise<string> {
  const response = await exports.default.fetch(`${BASE_URL}/t/${project}${path}`, { headers, redirect: "manual" });
  if (response.status >= 300 && response.status < 400) {
    const location = response.headers.get("location") ?? "";
    const prefix = `/t/${project}`;
    return `${response.status} → ${location.startsWith(`${prefix}/`) ? location.slice(prefix.length) : `(outside the prefix) ${location}`}`;
  }
  return `${response.status} ${await response.text()}`;
}

const NAVIGATE = { "Sec-Fetch-Mode": "navigate" };

describe("deploy input on the local platform", () => {
  it("assets: auto-trailing-slash, 404-page, run_worker_first patterns, the ASSETS binding; vars and secrets bound", async ({
    expect,
  }) => {
    const project = projectId("assets-auto");
    const status = await deployAndWait(
      await manifest(project, {
        html_handling: "auto-trailing-slash",
        not_found_handling: "404-page",
        run_worker_first: ["/api/*"],
      }),
    );
    expect(await get(project, "/")).toBe("200 home page");
    expect(await get(project, "/about")).toBe("200 about page");
    expect(await get(project, "/about.html")).toBe("307 → /about");
    expect(await get(project, "/blog")).toBe("307 → /blog/");
    expect(await get(project, "/blog/")).toBe("200 blog index");
    // A miss goes to the Worker; a browser navigation gets the 404 page (compatibility date ≥ 2025-04-01).
    expect(await get(project, "/missing")).toBe("200 worker /missing");
    expect(await get(project, "/missing", NAVIGATE)).toBe("404 custom 404");
    // A request with a body that the assets pass on reaches the Worker with its body.
    const posted = await exports.default.fetch(`${BASE_URL}/t/${project}/form`, { method: "POST", body: "a=1" });
    expect(`${posted.status} ${await posted.text()}`).toBe("200 worker got a=1");
    // run_worker_first: /api/* reaches the Worker, whose env.ASSETS.fetch follows the 307 to /about.
    expect(JSON.parse((await get(project, "/api/asset")).slice(4))).toEqual({
      status: 200,
      location: null,
      text: "about page",
    });
    expect(JSON.parse((await get(project, "/api/env")).slice(4))).toEqual({
      greeting: "hi",
      limits: { max: 3, tags: ["a", "b"] },
      enabled: true,
      ratio: 0.5,
      secret_matches: true,
      secret_type: "string",
    });

    // The secret is bound, and in no API answer or audit entry.
    const answers = await Promise.all(
      [
        `/v1/deploys/${status.deploy_id}`,
        `/v1/projects/${project}`,
        "/v1/projects",
        `/v1/admin/audit?format=json`,
        `/v1/admin/audit?format=csv`,
      ].map(async (path) => (await exports.default.fetch(`${BASE_URL}${path}`, { headers: ADMIN })).text()),
    );
    for (const answer of answers) expect(answer).not.toContain(SECRET);
  });

  it("assets: drop-trailing-slash with a single-page application, run_worker_first false", async ({ expect }) => {
    const project = projectId("assets-drop");
    await deployAndWait(
      await manifest(project, {
        html_handling: "drop-trailing-slash",
        not_found_handling: "single-page-application",
        run_worker_first: false,
      }),
    );
    expect(await get(project, "/blog")).toBe("200 blog index");
    expect(await get(project, "/blog/")).toBe("307 → /blog");
    expect(await get(project, "/app/route/7", NAVIGATE)).toBe("200 home page");
    expect(await get(project, "/app/route/7")).toBe("200 worker /app/route/7");
  });

  it("assets: force-trailing-slash; html_handling none; run_worker_first true sends all to the Worker", async ({
    expect,
  }) => {
    const forced = projectId("assets-force");
    await deployAndWait(await manifest(forced, { html_handling: "force-trailing-slash" }));
    expect(await get(forced, "/about")).toBe("307 → /about/");
    expect(await get(forced, "/about/")).toBe("200 about page");

    const none = projectId("assets-none");
    await deployAndWait(await manifest(none, { html_handling: "none", not_found_handling: "none" }));
    expect(await get(none, "/about.html")).toBe("200 about page");
    expect(await get(none, "/about")).toBe("200 worker /about");

    const first = projectId("assets-first");
    await deployAndWait(await manifest(first, { run_worker_first: true }));
    expect(await get(first, "/about")).toBe("200 worker /about");
  });

  it("assets belong to their version: a redeploy serves the new files, a rollback the old ones", async ({ expect }) => {
    const project = projectId("assets-versions");
    const first = await manifest(project, {});
    await deployAndWait(first);
    const changed = await htmlAsset("/index.html", "home page v2");
    await deployAndWait({
      ...first,
      assets: [...(first.assets ?? []).filter((file) => file.path !== "/index.html"), changed],
    });
    expect(await get(project, "/")).toBe("200 home page v2");
    const rollback = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}/rollback`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(rollback.status).toBe(202);
    const { deploy_id } = await rollback.json<{ deploy_id: string }>();
    expect((await waitForDeploy(deploy_id)).status).toBe("complete");
    expect(await get(project, "/")).toBe("200 home page");
  });

  it("an unsupported binding is a 400 naming it, and nothing is deployed", async ({ expect }) => {
    for (const key of ["workflows", "ai", "services", "queues", "vectorize"]) {
      const project = projectId("refused");
      const body = {
        ...(await manifest(project, {})),
        config: { [key]: [{ binding: "X" }] },
        assets: undefined,
      };
      const response = await postDeploy(body);
      expect(response.status).toBe(400);
      const error = (await response.json<{ error: { code: string; message: string; details: unknown } }>()).error;
      expect(error.code).toBe("unsupported_binding");
      expect(error.message).toContain(key);
      // It says what is hosted, all of it (R2 included), so the fix is clear.
      expect(error.message).toContain("D1, KV and R2");
      expect(error.details).toEqual({ unsupported_bindings: [key] });
      const known = await exports.default.fetch(`${BASE_URL}/v1/projects/${project}`, { headers: ADMIN });
      expect(known.status).toBe(404);
    }
  });
});
