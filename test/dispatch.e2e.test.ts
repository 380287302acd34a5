/**
 * Production tenant traffic (`SCRIPT_HOST=cloudflare`): deploy a tenant with the real
 * CloudflareScriptHost to the fake Workers for Platforms API, then send requests through Shipyard's
 * own router to `/t/<project>/…` and `<project>.<TENANT_HOST_SUFFIX>`, which dispatch to the
 * uploaded script through a dispatch namespace binding double that serves what the fake API holds
 * (test/fake-dispatch-namespace.ts). Answers match the local platform's: the tenant's own
 * responses pass through, 404 for an unknown project, 503 `do_binding_removed` with a hint after
 * enforcement removed a Durable Object binding (other routes keep working), 500 for a tenant that
 * threw or ran past its limits.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import worker from "../index.ts";
import { CloudflareScriptHost } from "../platform/cloudflare-script-host.ts";
import { TENANT_LIMITS } from "../platform/script-host.ts";
import { FAKE_CF_API_TOKEN } from "./fake-cloudflare-api/protocol.ts";
import { FakeDispatchNamespace } from "./fake-dispatch-namespace.ts";

const ACCOUNT_ID = "acct-test";
const NAMESPACE = "shipyard-tenants-test";

const TENANT = `export class Counter {}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/hello":
        return new Response("hello from " + env.GREETING + " at " + url.pathname + " on " + url.hostname);
      case "/teapot":
        return Response.json({ mine: true }, { status: 418 });
      case "/broken":
        return new Response("tenant's own 502", { status: 502 });
      case "/throw":
        throw new Error("tenant boom");
      case "/count":
        return Response.json(await env.COUNTER.getByName("x").fetch("http://do/"));
      case "/fetch": {
        const n = Number(url.searchParams.get("n"));
        for (let i = 0; i < n; i++) await fetch("https://upstream.example/" + i);
        return new Response("fetched " + n);
      }
    }
    return new Response("no route", { status: 404 });
  },
};
`;

const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

function host(): CloudflareScriptHost {
  return new CloudflareScriptHost({
    accountId: ACCOUNT_ID,
    namespace: NAMESPACE,
    apiToken: FAKE_CF_API_TOKEN,
    baseUrl: env.CF_API_BASE_URL,
    retries: { attempts: 2, baseDelayMs: 10, maxDelayMs: 1_000 },
  });
}

function dispatcher(): FakeDispatchNamespace {
  return new FakeDispatchNamespace({
    apiBaseUrl: env.CF_API_BASE_URL,
    accountId: ACCOUNT_ID,
    namespace: NAMESPACE,
    loader: env.LOADER,
  });
}

/** Deploys the tenant as project `project` with a Durable Object binding and a var. */
async function deploy(project: string): Promise<void> {
  await host().upload({
    scriptName: project,
    mainModule: "index.js",
    modules: [{ name: "index.js", type: "esm", content: TENANT }],
    bindings: [
      { type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" },
      { type: "plain_text", name: "GREETING", text: "the namespace" },
    ],
    compatibilityDate: "2026-11-01",
    migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] },
  });
}

/** A request through Shipyard's router, as the production Worker (SCRIPT_HOST=cloudflare) gets it. */
async function send(url: string, namespace: DispatchNamespace | undefined): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(url),
    { ...env, SCRIPT_HOST: "cloudflare", DISPATCHER: namespace, TENANT_HOST_SUFFIX: "tenants.test" },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

async function errorOf(response: Response): Promise<z.infer<typeof ErrorSchema>["error"]> {
  return ErrorSchema.parse(await response.json()).error;
}

function projectName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

describe("production dispatch through the dispatch namespace", () => {
  it("deploy → dispatch: /t/<project>/* and the project's hostname reach the uploaded script with the tenant limits", async ({
    expect,
  }) => {
    const project = projectName("disp");
    await deploy(project);
    const namespace = dispatcher();

    const byPath = await send(`http://api.example/t/${project}/hello`, namespace);
    expect(byPath.status).toBe(200);
    expect(await byPath.text()).toBe("hello from the namespace at /hello on api.example");

    const byHost = await send(`http://${project}.tenants.test/hello`, namespace);
    expect(await byHost.text()).toBe(`hello from the namespace at /hello on ${project}.tenants.test`);

    expect(namespace.calls).toEqual([
      { name: project, options: { limits: { cpuMs: TENANT_LIMITS.cpuMs, subRequests: TENANT_LIMITS.subRequests } } },
      { name: project, options: { limits: { cpuMs: TENANT_LIMITS.cpuMs, subRequests: TENANT_LIMITS.subRequests } } },
    ]);
  });

  it("the tenant's own 4xx and 5xx answers pass through unchanged", async ({ expect }) => {
    const project = projectName("own");
    await deploy(project);
    const namespace = dispatcher();
    const teapot = await send(`http://api.example/t/${project}/teapot`, namespace);
    expect(teapot.status).toBe(418);
    expect(await teapot.json()).toEqual({ mine: true });
    const broken = await send(`http://api.example/t/${project}/broken`, namespace);
    expect(broken.status).toBe(502);
    expect(await broken.text()).toBe("tenant's own 502");
  });

  it("an unknown project is 404 not_found (the binding's 'Worker not found.'), by path and by hostname", async ({
    expect,
  }) => {
    const namespace = dispatcher();
    const byPath = await send("http://api.example/t/never-deployed-x/hello", namespace);
    expect(byPath.status).toBe(404);
    expect(await errorOf(byPath)).toMatchObject({
      code: "not_found",
      message: "project never-deployed-x has no deployed Worker",
    });
    const byHost = await send("http://never-deployed-x.tenants.test/", namespace);
    expect(byHost.status).toBe(404);
  });

  it("a tenant that throws is a 500 tenant_exception naming its error", async ({ expect }) => {
    const project = projectName("throw");
    await deploy(project);
    const response = await send(`http://api.example/t/${project}/throw`, dispatcher());
    expect(response.status).toBe(500);
    const error = await errorOf(response);
    expect(error.code).toBe("tenant_exception");
    expect(error.message).toContain("tenant boom");
  });

  it("T6.1 a tenant past its limits is a 500 tenant_limit_exceeded: subrequests (enforced by the double) and CPU", async ({
    expect,
  }) => {
    const project = projectName("limits");
    await deploy(project);
    const namespace = dispatcher();

    const under = await send(`http://api.example/t/${project}/fetch?n=${TENANT_LIMITS.subRequests}`, namespace);
    expect(await under.text()).toBe(`fetched ${TENANT_LIMITS.subRequests}`);

    const over = await send(`http://api.example/t/${project}/fetch?n=${TENANT_LIMITS.subRequests + 1}`, namespace);
    expect(over.status).toBe(500);
    expect(await errorOf(over)).toMatchObject({
      code: "tenant_limit_exceeded",
      details: { limit: "subrequests", value: TENANT_LIMITS.subRequests },
    });

    namespace.exceedCpu(project);
    const cpu = await send(`http://api.example/t/${project}/hello`, namespace);
    expect(cpu.status).toBe(500);
    const error = await errorOf(cpu);
    expect(error).toMatchObject({
      code: "tenant_limit_exceeded",
      details: { limit: "cpu_ms", value: TENANT_LIMITS.cpuMs },
    });
    expect(error.message).toContain("Worker exceeded CPU time limit.");
    // The limit stopped one invocation; the next one runs.
    expect((await send(`http://api.example/t/${project}/hello`, namespace)).status).toBe(200);
  });

  it("T6.2 after enforcement removed COUNTER: a route that needs it is 503 do_binding_removed with a hint, the others keep working", async ({
    expect,
  }) => {
    const project = projectName("enf");
    await deploy(project);
    const namespace = dispatcher();
    // Before enforcement a failing Durable Object route is the tenant's own exception.
    expect(await errorOf(await send(`http://api.example/t/${project}/count`, namespace))).toMatchObject({
      code: "tenant_exception",
    });

    // What the enforcement workflow does on Cloudflare: drop the binding in a settings PATCH
    // (the real client, against the fake API) and record it in D1.
    await host().setBindings(project, [{ type: "plain_text", name: "GREETING", text: "the namespace" }]);
    await env.DB.prepare(
      "INSERT INTO do_enforcement (project_id, removed_bindings, wall_ms, threshold_ms, enforced_at) VALUES (?, ?, ?, ?, ?)",
    )
      .bind(
        project,
        JSON.stringify([{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }]),
        30_000_000,
        28_800_000,
        Date.now(),
      )
      .run();

    const removed = await send(`http://api.example/t/${project}/count`, namespace);
    expect(removed.status).toBe(503);
    expect(removed.headers.get("retry-after")).toBe("300");
    expect(await errorOf(removed)).toEqual({
      code: "do_binding_removed",
      message: "this route needs Durable Object binding(s) COUNTER, removed by usage enforcement",
      details: {
        bindings: ["COUNTER"],
        hint: "the project used more Durable Object wall time than its budget; redeploy or ask on-call to restore the bindings",
      },
    });
    const other = await send(`http://${project}.tenants.test/hello`, namespace);
    expect(other.status).toBe(200);
    // A tenant's own 4xx is still its own, enforced or not.
    expect((await send(`http://api.example/t/${project}/teapot`, namespace)).status).toBe(418);
  });

  it("without a DISPATCHER binding, cloudflare mode answers 501 dispatch_not_configured", async ({ expect }) => {
    const response = await send("http://api.example/t/any-project/", undefined);
    expect(response.status).toBe(501);
    expect((await errorOf(response)).code).toBe("dispatch_not_configured");
  });
});
