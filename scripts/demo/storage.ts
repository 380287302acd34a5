/**
 * The demo's storage tenant (examples/storage-tenant): a D1 database with two migrations, a KV
 * namespace and an R2 bucket, provisioned by Shipyard on the first deploy. Checks that the
 * migrations ran (the row migration 0001 inserted, read back through the tenant's own route), that
 * a KV value and an R2 object read back, that all three survive a redeploy, that the project lists
 * them with sizes, and that `down` exports the database to SQL and then deletes every resource.
 */
import path from "node:path";
import { z } from "zod";
import { readManifest } from "../../cli/manifest.ts";
import type { Phase } from "../lib/report.ts";
import { ADMIN_TOKEN } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";
import { apiCall, brief, call, waitFor } from "./api.ts";
import { type DemoContext, need } from "./context.ts";
import { deployManifest } from "./deploy.ts";

export const STORAGE_TENANT_DIR = path.join(ROOT, "examples", "storage-tenant");
const SECTION = "Storage tenant (examples/storage-tenant: D1, KV, R2)";

const NotesSchema = z.array(z.object({ id: z.number(), body: z.string(), tag: z.string().nullable() }));
const MIGRATED = "written by migration 0001";

export function storagePhases(options: { timeoutMs: number }): Phase<DemoContext>[] {
  return [
    {
      name: "storage-tenant",
      title: "Deploy a tenant with D1 migrations, KV and R2 (provisioned by Shipyard), then take it down",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const manifest = await readManifest(STORAGE_TENANT_DIR, { projectId: "demo-storage" });
        const project = manifest.project_id;
        const base = `/t/${project}`;
        const first = await deployManifest(ctx, manifest, "storage-tenant", options.timeoutMs);
        const migrate = first.status.steps.find((step) => step.name === "apply D1 migrations");
        ctx.report.set(
          SECTION,
          "deploy",
          `${first.deployId} · ${first.status.status} · ${brief(migrate?.output, 120)}`,
        );
        ctx.report.check(
          "storage: the deploy applied both D1 migrations as a step",
          first.status.status === "complete" &&
            JSON.stringify(migrate?.output) ===
              JSON.stringify({ applied: { DB: ["0001_notes.sql", "0002_tags.sql"] } }),
          `${first.status.status}; apply D1 migrations → ${brief(migrate?.output, 120)}`,
        );

        const notes = await call(stack, "GET", `${base}/notes`);
        const parsed = NotesSchema.safeParse(notes.body);
        ctx.report.set(SECTION, `GET ${base}/notes`, `${notes.status} ${brief(notes.body, 120)}`);
        ctx.report.check(
          "storage: the row migration 0001 inserted reads back through the tenant's route (and 0002's column is there)",
          notes.status === 200 && parsed.success && parsed.data.some((n) => n.body === MIGRATED && n.tag === null),
          `${notes.status} ${brief(notes.body, 120)}`,
        );
        const added = await call(
          stack,
          "POST",
          `${base}/notes?body=${encodeURIComponent("added by the demo")}&tag=demo`,
        );

        const kvValue = `hello from KV at ${new Date().toISOString()}`;
        const put = await call(stack, "PUT", `${base}/kv/greeting`, { rawBody: kvValue });
        const got = await call(stack, "GET", `${base}/kv/greeting`);
        ctx.report.set(
          SECTION,
          `PUT then GET ${base}/kv/greeting`,
          `${put.status}, ${got.status} ${brief(got.body, 80)}`,
        );
        ctx.report.check(
          "storage: the KV value the tenant wrote reads back",
          put.status === 204 && got.status === 200 && got.body === kvValue,
          `PUT ${put.status}, GET ${got.status} ${brief(got.body, 80)}`,
        );

        const fileBody = "an R2 object written by the tenant";
        const stored = await call(stack, "PUT", `${base}/files/reports/day.txt`, { rawBody: fileBody });
        const file = await call(stack, "GET", `${base}/files/reports/day.txt`);
        ctx.report.set(
          SECTION,
          `PUT then GET ${base}/files/reports/day.txt`,
          `${stored.status}, ${file.status} ${brief(file.body, 80)}`,
        );
        ctx.report.check(
          "storage: the R2 object the tenant put reads back",
          stored.status === 201 && file.status === 200 && file.body === fileBody,
          `PUT ${stored.status} ${brief(stored.body, 80)}, GET ${file.status} ${brief(file.body, 80)}`,
        );

        const before = await apiCall(stack, "getProject", { params: { id: project } });
        const second = await deployManifest(ctx, manifest, "storage-tenant again", options.timeoutMs);
        const after = await apiCall(stack, "getProject", { params: { id: project } });
        const notesAgain = NotesSchema.safeParse((await call(stack, "GET", `${base}/notes`)).body);
        const kvAgain = await call(stack, "GET", `${base}/kv/greeting`);
        const fileAgain = await call(stack, "GET", `${base}/files/reports/day.txt`);
        ctx.report.check(
          "storage: a redeploy binds the same database, namespace and bucket; the data is all there",
          second.status.status === "complete" &&
            JSON.stringify(before.resources.map((r) => r.id)) === JSON.stringify(after.resources.map((r) => r.id)) &&
            added.status === 201 &&
            notesAgain.success &&
            notesAgain.data.length === 2 &&
            kvAgain.body === kvValue &&
            fileAgain.body === fileBody,
          `ids ${after.resources.map((r) => `${r.kind}:${r.id.slice(0, 12)}`).join(", ")}; notes ${notesAgain.success ? notesAgain.data.length : "?"}; KV ${brief(kvAgain.body, 40)}; R2 ${brief(fileAgain.body, 40)}`,
        );
        for (const resource of after.resources) {
          ctx.report.set(
            SECTION,
            `resource ${resource.binding}`,
            `${resource.kind} ${resource.name} · ${resource.size_bytes === null ? "size not cheap to say" : `${resource.size_bytes} bytes`}`,
          );
        }
        ctx.report.check(
          "storage: GET /v1/projects/:id lists D1, KV and R2 with sizes (D1 and R2 known)",
          after.resources
            .map((r) => r.kind)
            .toSorted()
            .join(",") === "d1,kv,r2" &&
            (after.resources.find((r) => r.kind === "r2")?.size_bytes ?? 0) === fileBody.length &&
            (after.resources.find((r) => r.kind === "d1")?.size_bytes ?? 0) > 0,
          after.resources.map((r) => `${r.kind} ${r.size_bytes ?? "null"}`).join(", "),
        );

        // down: the 409 names every resource; export D1 first, then confirm.
        const refused = await call(stack, "DELETE", `/v1/projects/${project}`, { token: ADMIN_TOKEN });
        ctx.report.check(
          "storage: down without confirmation is a 409 naming the D1, KV and R2 resources",
          refused.status === 409 &&
            ["D1 database DB", "KV namespace CACHE", "R2 bucket FILES"].every((s) =>
              brief(refused.body, 2000).includes(s),
            ),
          `${refused.status} ${brief(refused.body, 200)}`,
        );
        const exported = await apiCall(stack, "exportResource", { params: { id: project, binding: "DB" } });
        ctx.report.set(SECTION, "export DB", `${Buffer.byteLength(exported.sql)} bytes of SQL`);
        ctx.report.check(
          "storage: the D1 database exports to SQL with its migrated and added rows",
          exported.sql.includes("CREATE TABLE notes") &&
            exported.sql.includes(MIGRATED) &&
            exported.sql.includes("added by the demo"),
          `${Buffer.byteLength(exported.sql)} bytes; ${brief(exported.sql, 100)}`,
        );
        const down = await apiCall(stack, "deleteProject", { params: { id: project }, query: { confirm: project } });
        const finished = await waitFor(
          stack,
          { timeoutMs: options.timeoutMs, intervalMs: 400, describe: () => `down ${down.deploy_id} not finished` },
          async () => {
            const status = await apiCall(stack, "getDeploy", { params: { id: down.deploy_id } });
            return status.status === "complete" || status.status === "errored" ? status : undefined;
          },
        );
        const deleted = finished.steps.find((step) => step.name === "delete resources");
        ctx.report.set(SECTION, "down", `${finished.status} · delete resources → ${brief(deleted?.output, 120)}`);
        ctx.report.check(
          "storage: down deletes the database, the namespace and the bucket",
          finished.status === "complete" &&
            JSON.stringify(deleted?.output) === JSON.stringify({ deleted: ["kv:CACHE", "d1:DB", "r2:FILES"] }),
          `${finished.status}; ${brief(deleted?.output, 120)}`,
        );
      },
    },
  ];
}
