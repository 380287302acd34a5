/**
 * The demo's real-project deploy: examples/ts-tenant, a TypeScript Worker with an npm dependency
 * (Hono), static assets and a Durable Object, read and bundled by wrangler through the CLI's own
 * code (`shipyard deploy` sends these bytes), then checked part by part through Shipyard's
 * dispatch: the page and stylesheet from assets, the SPA fallback for a browser navigation, the
 * Hono API with JSON vars, the ASSETS binding from the Worker, and the Room Durable Object.
 */
import { get as httpGet } from "node:http";
import path from "node:path";
import { z } from "zod";
import { readManifest } from "../../cli/manifest.ts";
import type { Phase } from "../lib/report.ts";
import type { Stack } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";
import { brief, call } from "./api.ts";
import { type DemoContext, need } from "./context.ts";
import { deployManifest } from "./deploy.ts";

export const TS_TENANT_DIR = path.join(ROOT, "examples", "ts-tenant");
const SECTION = "TypeScript tenant (examples/ts-tenant)";

const HelloSchema = z.object({
  greeting: z.string(),
  features: z.object({ rooms: z.boolean(), max_rooms: z.number() }),
  framework: z.literal("hono"),
});
const VisitSchema = z.object({ room: z.string(), visits: z.number().int() });
const AssetSizeSchema = z.object({ status: z.number(), bytes: z.number() });

/**
 * A GET through Shipyard with the headers a browser sends for a page load. node:http, not fetch:
 * Node's fetch sets `Sec-Fetch-Mode: cors` itself, as the Fetch standard has it.
 */
async function navigate(stack: Stack, pathname: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(
      `${stack.url}${pathname}`,
      { headers: { "Sec-Fetch-Mode": "navigate", Accept: "text/html" }, timeout: 30_000 },
      (response) => {
        let text = "";
        response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, type: response.headers["content-type"] ?? "", text }),
        );
      },
    );
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error(`GET ${pathname} timed out`)));
  });
}

export function tsTenantPhases(options: { timeoutMs: number }): Phase<DemoContext>[] {
  return [
    {
      name: "ts-tenant",
      title: "Deploy a TypeScript tenant with an npm dependency and static assets (wrangler bundles it)",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const started = Date.now();
        const manifest = await readManifest(TS_TENANT_DIR, {
          onProgress: (line) =>
            ctx.progress.update(`bundling ${path.relative(ROOT, TS_TENANT_DIR)}: ${line.trim().slice(0, 90)}`),
        });
        const bundleMs = Date.now() - started;
        const main = manifest.modules.find((module) => module.name === manifest.main_module);
        const assets = manifest.assets ?? [];
        ctx.progress.done(
          `  ${path.relative(ROOT, TS_TENANT_DIR)}: bundled by wrangler in ${bundleMs} ms → ${manifest.modules.map((module) => `${module.name} (${module.type})`).join(", ")}; ${assets.length} assets`,
        );
        ctx.report.set(
          SECTION,
          "bundle",
          `${manifest.modules.map((module) => `${module.name} ${module.type}`).join(", ")} · ${bundleMs} ms`,
        );
        ctx.report.set(SECTION, "assets", assets.map((file) => `${file.path} (${file.size} B)`).join(", "));
        ctx.report.check(
          "ts-tenant: wrangler bundled TypeScript and the npm dependency, with a source map",
          main !== undefined &&
            /node_modules\/hono\//.test(main.content) &&
            manifest.modules.some((module) => module.type === "sourcemap"),
          `main ${manifest.main_module} ${main?.content.length ?? 0} chars; Hono inlined: ${/node_modules\/hono\//.test(main?.content ?? "")}`,
        );
        const run = await deployManifest(ctx, manifest, "ts-tenant", options.timeoutMs);
        ctx.report.set(SECTION, "deploy", `${run.deployId} · ${run.status.status}`);

        const base = `/t/${manifest.project_id}`;
        const page = await navigate(stack, `${base}/`);
        const css = await call(stack, "GET", `${base}/app.css`);
        const spa = await navigate(stack, `${base}/rooms/lobby`);
        ctx.report.set(SECTION, `GET ${base}/`, `${page.status} ${page.type}`);
        ctx.report.check(
          "ts-tenant: the page comes from static assets",
          page.status === 200 && page.type.startsWith("text/html") && page.text.includes("<h1>ts-tenant</h1>"),
          `${page.status} ${page.type} ${brief(page.text, 80)}`,
        );
        ctx.report.check(
          "ts-tenant: the stylesheet comes from static assets",
          css.status === 200 && (css.headers.get("content-type") ?? "").startsWith("text/css"),
          `${css.status} ${css.headers.get("content-type") ?? ""}`,
        );
        ctx.report.check(
          "ts-tenant: a browser navigation to a client route gets index.html (single-page-application)",
          spa.status === 200 && spa.text.includes("<h1>ts-tenant</h1>"),
          `${spa.status} ${brief(spa.text, 80)}`,
        );

        const hello = await call(stack, "GET", `${base}/api/hello`);
        const parsed = HelloSchema.safeParse(hello.body);
        ctx.report.set(SECTION, `GET ${base}/api/hello`, `${hello.status} ${brief(hello.body, 120)}`);
        ctx.report.check(
          "ts-tenant: the Hono API answers with its JSON vars",
          hello.status === 200 && parsed.success && parsed.data.features.max_rooms === 8,
          `${hello.status} ${brief(hello.body, 120)}`,
        );
        const size = await call(stack, "GET", `${base}/api/asset-size`);
        const sized = AssetSizeSchema.safeParse(size.body);
        const cssBytes = assets.find((file) => file.path === "/app.css")?.size;
        ctx.report.check(
          "ts-tenant: the Worker reads its own assets through the ASSETS binding",
          size.status === 200 && sized.success && sized.data.status === 200 && sized.data.bytes === cssBytes,
          `${size.status} ${brief(size.body, 80)} (app.css is ${cssBytes ?? "?"} bytes)`,
        );

        const visits: number[] = [];
        for (let i = 0; i < 3; i++) {
          const answer = await call(stack, "POST", `${base}/api/rooms/lobby/visit`);
          const visit = VisitSchema.safeParse(answer.body);
          if (answer.status === 200 && visit.success) visits.push(visit.data.visits);
        }
        ctx.report.set(SECTION, `POST ${base}/api/rooms/lobby/visit ×3`, visits.join(", "));
        ctx.report.check(
          "ts-tenant: the Room Durable Object counts visits 1, 2, 3",
          visits.join(",") === "1,2,3",
          `visits ${visits.join(", ") || "none"}`,
        );
      },
    },
  ];
}
