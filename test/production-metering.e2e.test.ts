/**
 * Metering in production (issue 13 point 2; docs/reliability-tenants.md rows T2.4–T2.9): every
 * tenant upload names Shipyard's Worker as its tail consumer, and Shipyard's real `tail` handler
 * (index.ts → platform/tail-usage.ts) turns the runtime's trace items into `do_usage` events
 * through the telemetry pipeline into D1, which enforcement reads. The items are built as workerd
 * builds them (test/trace-items.ts), or captured from local workerd and re-addressed as Cloudflare
 * delivers them; the env is Shipyard's own with `SCRIPT_HOST=cloudflare`.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { z } from "zod";
import worker from "../index.ts";
import { CloudflareScriptHost, uploadMetadata } from "../platform/cloudflare-script-host.ts";
import { assemble, manifestBindings, planMigration, uploadRequest } from "../platform/deploy-plan.ts";
import { usageOfTraces } from "../platform/tail-usage.ts";
import { HOUR_MS, usageSource } from "../platform/usage-source.ts";
import { PLATFORM_BINDING_NAMES } from "../schemas/deploy.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { BASE_URL, deployAndWait, projectId, sampleManifest } from "./deploy-helpers.ts";
import { type ControlCommand, FAKE_CF_API_TOKEN } from "./fake-cloudflare-api/protocol.ts";
import { api, readError, runEnforcement, uid } from "./helpers.ts";
import {
  type TraceFields,
  alarmEvent,
  capturedTraceItems,
  cronEvent,
  fetchEvent,
  objectId,
  rpcEvent,
  traceItem,
  webSocketEvent,
} from "./trace-items.ts";

const DAY_MS = 24 * HOUR_MS;
const YEAR_2100 = Date.UTC(2100, 0, 1);
const NAMESPACE = env.CF_DISPATCH_NAMESPACE;

/** Shipyard's env as deployed (scripts/lib/production-config.ts): tenants on Cloudflare. */
const production: Env = {
  ...env,
  SCRIPT_HOST: "cloudflare",
  CLIENT_ADDRESS: "cf-connecting-ip",
  CF_ACCOUNT_ID: "acct-metering",
  CF_API_TOKEN: FAKE_CF_API_TOKEN,
};

afterEach(() => {
  vi.restoreAllMocks();
});

/** A Durable Object invocation of `project`'s script in Shipyard's namespace. */
function invocation(project: string, fields: Partial<TraceFields> & Pick<TraceFields, "event">): TraceItem {
  return traceItem({ scriptName: project, dispatchNamespace: NAMESPACE, entrypoint: "Counter", ...fields });
}

/** Runs Shipyard's real `tail` handler on `items`, as the runtime invokes it. */
async function deliverTail(items: TraceItem[], target: Env = production): Promise<void> {
  await worker.tail(items, target);
}

const UsageRowSchema = z.object({ id: z.string(), ts: z.number(), data: z.string() });
const UsageDataSchema = z.object({
  class: z.string(),
  handler: z.string(),
  outcome: z.string(),
  wall_ms: z.number(),
  cpu_ms: z.number().optional(),
});

async function usageRows(project: string) {
  const { results } = await env.DB.prepare(
    "SELECT id, ts, data FROM runtime_events WHERE project_id = ? AND type = 'do_usage' ORDER BY ts, id",
  )
    .bind(project)
    .all();
  return z
    .array(UsageRowSchema)
    .parse(results)
    .map((row) => ({ id: row.id, ts: row.ts, ...UsageDataSchema.parse(JSON.parse(row.data)) }));
}

/** Waits until `project` has `count` stored `do_usage` events, and answers them. */
async function waitForUsageRows(project: string, count: number) {
  let rows: Awaited<ReturnType<typeof usageRows>> = [];
  await vi.waitUntil(
    async () => {
      rows = await usageRows(project);
      return rows.length >= count;
    },
    { timeout: 15_000, interval: 100 },
  );
  return rows;
}

/** What the production usage source (enforcement's and `GET do-usage`'s) reads for `project` now. */
async function productionUsage(project: string) {
  const now = Date.now();
  return usageSource(production).currentUsageOf(project, DAY_MS, now);
}

async function control(command: ControlCommand): Promise<void> {
  const response = await fetch(new URL("/__control", env.CF_API_BASE_URL), {
    method: "POST",
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`fake control refused: ${await response.text()}`);
}

describe("production metering: Shipyard's tail handler", () => {
  it("T2.4 a DO alarm, an RPC call, a fetch and a hibernated WebSocket message each count once, with the runtime's wall and CPU time and timestamp", async ({
    expect,
  }) => {
    const project = projectId("tail");
    const at = Date.now() - 60_000;
    const id = objectId();
    await deliverTail([
      invocation(project, {
        event: alarmEvent(at),
        eventTimestamp: at,
        wallTime: 120,
        cpuTime: 4,
        durableObjectId: id,
      }),
      invocation(project, { event: rpcEvent("increment"), eventTimestamp: at + 1, wallTime: 35, cpuTime: 2 }),
      invocation(project, { event: fetchEvent("https://tenant/counter/a"), eventTimestamp: at + 2, wallTime: 250 }),
      invocation(project, {
        event: webSocketEvent("message"),
        eventTimestamp: at + 3,
        wallTime: 7,
        outcome: "exceededCpu",
        entrypoint: "Room",
      }),
    ]);
    const rows = await waitForUsageRows(project, 4);
    expect(rows.map(({ id: _id, ...row }) => row)).toEqual([
      { ts: at, class: "Counter", handler: "alarm", outcome: "ok", wall_ms: 120, cpu_ms: 4 },
      { ts: at + 1, class: "Counter", handler: "rpc:increment", outcome: "ok", wall_ms: 35, cpu_ms: 2 },
      { ts: at + 2, class: "Counter", handler: "fetch", outcome: "ok", wall_ms: 250, cpu_ms: 1 },
      { ts: at + 3, class: "Room", handler: "webSocketMessage", outcome: "error", wall_ms: 7, cpu_ms: 1 },
    ]);
    expect(await productionUsage(project)).toMatchObject({ wallMs: 412, invocations: 4, source: "runtime_events" });
  });

  it("T2.5 only Durable Object invocations of scripts in Shipyard's namespace count: another namespace, no namespace, a stateless or cron invocation, a script no project is named are ignored; an old version counts for its project; a deleted project's late items stay its own", async ({
    expect,
  }) => {
    const project = projectId("scope");
    const deleted = projectId("gone");
    const victim = projectId("victim");
    const at = Date.now() - 30_000;
    const items = [
      // Another namespace, and an account-level Worker naming Shipyard as its tail consumer,
      // both claiming the victim's script name.
      invocation(victim, { event: fetchEvent("https://x/"), dispatchNamespace: "someone-elses", wallTime: 9_999_999 }),
      traceItem({ scriptName: victim, entrypoint: "Counter", event: fetchEvent("https://x/"), wallTime: 9_999_999 }),
      // The project's stateless Worker and a cron: not Durable Object time.
      invocation(project, { event: fetchEvent("https://t/"), executionModel: "stateless", entrypoint: "default" }),
      invocation(project, { event: cronEvent(at), executionModel: "stateless" }),
      // Script names no project is uploaded under.
      invocation("Not_A_Project", { event: rpcEvent("x") }),
      traceItem({ scriptName: null, dispatchNamespace: NAMESPACE, entrypoint: "Counter", event: rpcEvent("x") }),
      // Counted: the live version, an old version still finishing an invocation, a deleted project.
      invocation(project, { event: rpcEvent("increment"), wallTime: 30, eventTimestamp: at }),
      invocation(project, {
        event: rpcEvent("increment"),
        wallTime: 20,
        eventTimestamp: at + 1,
        scriptVersionId: "old",
      }),
      invocation(deleted, { event: alarmEvent(at), wallTime: 5, eventTimestamp: at }),
    ];
    const { events, skipped } = await usageOfTraces(items, { namespace: NAMESPACE, now: Date.now() });
    expect(skipped).toEqual({ outside_namespace: 2, not_durable_object: 2, not_a_project: 2 });
    expect(events.map((event) => event.project_id)).toEqual([project, project, deleted]);

    await deliverTail(items);
    expect((await waitForUsageRows(project, 2)).map((row) => row.wall_ms)).toEqual([30, 20]);
    expect((await waitForUsageRows(deleted, 1)).map((row) => row.wall_ms)).toEqual([5]);
    expect(await usageRows(victim)).toEqual([]);
    expect((await productionUsage(victim)).wallMs).toBe(0);
  });

  it("T2.6 a redelivered batch counts once; two identical invocations in one batch count twice", async ({ expect }) => {
    const project = projectId("redeliver");
    const at = Date.now() - 10_000;
    const id = objectId();
    const twin = () =>
      invocation(project, { event: rpcEvent("tick"), eventTimestamp: at, wallTime: 40, durableObjectId: id });
    const batch = [
      twin(),
      twin(),
      invocation(project, { event: fetchEvent("https://t/"), eventTimestamp: at + 5, wallTime: 60 }),
    ];

    const first = await usageOfTraces(batch, { namespace: NAMESPACE, now: Date.now() });
    const again = await usageOfTraces(batch, { namespace: NAMESPACE, now: Date.now() + 5_000 });
    expect(new Set(first.events.map((event) => event.id)).size).toBe(3);
    expect(again.events).toEqual(first.events);

    await deliverTail(batch);
    await waitForUsageRows(project, 3);
    // The redelivery carries one new invocation: once it is stored, the repeated ones were seen too.
    const marker = invocation(project, { event: alarmEvent(at), eventTimestamp: at + 9, wallTime: 1 });
    await deliverTail([...batch, marker]);
    const rows = await waitForUsageRows(project, 4);
    expect(rows.map((row) => row.wall_ms).toSorted((a, b) => a - b)).toEqual([1, 40, 40, 60]);
    expect(await productionUsage(project)).toMatchObject({ wallMs: 141, invocations: 4 });
  });

  it("T2.7 enforcement reads tail-measured usage: a project over the threshold by trace items alone is enforced; a deleted project's usage enforces nothing", async ({
    expect,
  }) => {
    const project = projectId("tailenf");
    const gone = projectId("tailgone");
    await deployAndWait(sampleManifest(project));
    const at = Date.now() - 60_000;
    await deliverTail([
      invocation(project, { event: fetchEvent("https://t/counter/a"), eventTimestamp: at, wallTime: 2_500 }),
      invocation(project, { event: alarmEvent(at), eventTimestamp: at + 1, wallTime: 1_500 }),
      invocation(gone, { event: alarmEvent(at), eventTimestamp: at, wallTime: 9_000 }),
    ]);
    await waitForUsageRows(project, 2);
    await waitForUsageRows(gone, 1);

    const run = await runEnforcement(3_000);
    expect(run.output?.enforced).toContain(project);
    expect(run.output?.enforced).not.toContain(gone);
    expect(await api().call("getDoUsage", { params: { id: project } })).toMatchObject({
      wall_ms: 4_000,
      source: "runtime_events",
      do_enforcement_status: "enforced",
      removed_bindings: [{ name: "COUNTER" }],
    });
  });
});

/** A `do_usage` event as a forger would post it. */
function forged(project: string, wallMs: number, ts = Date.now()): RuntimeEvent {
  return {
    id: uid("forged"),
    project_id: project,
    type: "do_usage",
    ts,
    data: { class: "Counter", handler: "fetch", outcome: "ok", wall_ms: wallMs },
  };
}

/** The upload a deploy of `project`'s sample manifest makes (the deploy workflow's functions). */
function deployUpload(project: string) {
  const manifest = sampleManifest(project);
  return uploadRequest(project, assemble(manifest), manifest, planMigration(manifest, null, []), false);
}

describe("production metering: forgery and suppression have no effect", () => {
  it("T2.8 do_usage posted to the public API (huge, negative, year 2100) is refused; Analytics Engine points a tenant could write are not read; odd trace values count as spent", async ({
    expect,
  }) => {
    const victim = projectId("victim");
    const attacker = projectId("attacker");
    for (const event of [forged(victim, 10 * DAY_MS), forged(attacker, -10 * DAY_MS), forged(victim, 1, YEAR_2100)]) {
      const ctx = createExecutionContext();
      const response = await worker.fetch(
        new Request(`${BASE_URL}/v1/events`, {
          method: "POST",
          headers: { authorization: "Bearer dev-ingest-key", "content-type": "application/json" },
          body: JSON.stringify({ events: [event] }),
        }),
        production,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(response.status).toBe(400);
      expect((await readError(response)).error.code).toBe("reserved_event_type");
    }

    // What the seed's wrapper (or a tenant holding an Analytics Engine binding) would write.
    await control({
      action: "ae_points",
      points: [
        { project: victim, className: "Counter", handler: "fetch", wallMs: 10 * DAY_MS },
        { project: attacker, className: "Counter", handler: "fetch", wallMs: -10 * DAY_MS },
      ],
    });

    // The runtime's own values, however odd, are what was spent: negative or NaN → 0, a timestamp
    // ahead of the clock counts now (not in some later window), and the attacker's real usage stays.
    await deliverTail([
      invocation(attacker, { event: rpcEvent("spin"), wallTime: -500 }),
      invocation(attacker, { event: rpcEvent("spin"), wallTime: Number.NaN }),
      invocation(attacker, { event: rpcEvent("spin"), wallTime: 70, eventTimestamp: YEAR_2100 }),
    ]);
    const rows = await waitForUsageRows(attacker, 3);
    expect(rows.map((row) => row.wall_ms).toSorted((a, b) => a - b)).toEqual([0, 0, 70]);
    expect(Math.max(...rows.map((row) => row.ts))).toBeLessThanOrEqual(Date.now());
    expect(await productionUsage(attacker)).toMatchObject({ wallMs: 70, invocations: 3 });
    expect(await productionUsage(victim)).toMatchObject({ wallMs: 0, invocations: 0 });
  });

  it.for([
    ["own-property fetch", "", "this.fetch = async () => new Response('own');", ""],
    ["getter fetch", "", "", "get fetch() { return async () => new Response('getter'); }"],
    [
      "replaced env.USAGE",
      "",
      "try { Object.defineProperty(env, 'USAGE', { value: { writeDataPoint() {} }, configurable: true }); } catch {}",
      "async fetch() { return new Response('plain'); }",
    ],
    [
      "replaced globalThis.Proxy",
      "globalThis.Proxy = class { constructor(target) { return target; } };",
      "",
      "async fetch() { return new Response('plain'); }",
    ],
    ["replaced Date.now", "Date.now = () => 0;", "", "async fetch() { return new Response('plain'); }"],
  ] as const)(
    "T2.8 suppression from inside (%s): workerd traces every call, and each counts once in production",
    async ([, top, ctor, body], { expect }) => {
      const project = projectId("trick");
      const tenantSource = `import { DurableObject } from "cloudflare:workers";
${top}
export class C extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ${ctor}
  }
  ${body}
}
export default { fetch: () => new Response("default") };
`;
      const calls = 3;
      const traced = await capturedTraceItems(tenantSource, "C", calls, async (facet) => {
        for (let call = 0; call < calls; call++) await (await facet.fetch("http://do/")).text();
      });
      // The same items as Cloudflare delivers them for the project's script in the namespace.
      const delivered = traced.map((item): TraceItem => ({
        ...item,
        scriptName: project,
        dispatchNamespace: NAMESPACE,
      }));
      const { events } = await usageOfTraces(delivered, { namespace: NAMESPACE, now: Date.now() });
      expect(events.map((event) => [event.project_id, event.data.class, event.data.handler])).toEqual(
        Array.from({ length: calls }, () => [project, "C", "fetch"]),
      );
    },
  );

  it("T2.4 (local) the tail handler counts nothing on the local platform (the host meters there, never twice)", async ({
    expect,
  }) => {
    const project = projectId("localtail");
    const sends = vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch");
    await deliverTail([invocation(project, { event: rpcEvent("x"), wallTime: 50 })], env);
    expect(sends).not.toHaveBeenCalled();
  });
});

describe("production upload metadata", () => {
  const ACCOUNT = "acct-metering";

  function host(tailConsumer: string | undefined = production.SHIPYARD_WORKER_NAME): CloudflareScriptHost {
    return new CloudflareScriptHost({
      accountId: ACCOUNT,
      namespace: NAMESPACE,
      apiToken: FAKE_CF_API_TOKEN,
      baseUrl: env.CF_API_BASE_URL,
      retries: { attempts: 2, baseDelayMs: 10 },
      ...(tailConsumer === undefined ? {} : { tailConsumer }),
    });
  }

  const StoredSchema = z.object({
    bindings: z.array(z.looseObject({ type: z.string(), name: z.string() })),
    tail_consumers: z.array(z.looseObject({ service: z.string() })),
  });

  async function stored(script: string) {
    const response = await fetch(new URL(`/__control/scripts/${encodeURIComponent(script)}`, env.CF_API_BASE_URL));
    return StoredSchema.parse(await response.json());
  }

  it("T2.9 every upload names Shipyard's Worker as tail consumer and binds no platform binding the tenant could write; a settings change keeps the consumer", async ({
    expect,
  }) => {
    const project = projectId("upload");
    const request = deployUpload(project);
    const metadata = uploadMetadata(request, undefined, production.SHIPYARD_WORKER_NAME);
    expect(metadata.tail_consumers).toEqual([{ service: "shipyard" }]);
    const types = request.bindings.map((binding) => binding.type);
    expect(types).not.toContain("analytics_engine");
    expect(
      request.bindings.map((binding) => binding.name).filter((name) => PLATFORM_BINDING_NAMES.includes(name)),
    ).toEqual([]);
    expect(manifestBindings(sampleManifest(project)).map((binding) => binding.name)).toEqual(["COUNTER", "GREETING"]);

    await host().upload(request);
    expect(await stored(project)).toMatchObject({
      tail_consumers: [{ service: "shipyard" }],
      bindings: [
        { type: "durable_object_namespace", name: "COUNTER" },
        { type: "plain_text", name: "GREETING" },
      ],
    });
    // Enforcement removes Durable Object bindings with a settings PATCH: the consumer stays.
    await host().setBindings(project, [{ type: "plain_text", name: "GREETING", text: "hello v1" }]);
    expect((await stored(project)).tail_consumers).toEqual([{ service: "shipyard" }]);
  });

  it("T2.9 the fake API refuses a tail consumer that is not deployed, and malformed tail_consumers, as validation errors", async ({
    expect,
  }) => {
    const project = projectId("noconsumer");
    await expect(host("shipyard-not-deployed").upload(deployUpload(project))).rejects.toMatchObject({
      code: "invalid_script",
      message: expect.stringContaining("'shipyard-not-deployed' does not exist"),
    });

    const url = `${env.CF_API_BASE_URL}/accounts/${ACCOUNT}/workers/dispatch/namespaces/${NAMESPACE}/scripts/${projectId("shape")}`;
    for (const tailConsumers of [
      "shipyard",
      [{}],
      [{ service: "" }],
      [{ service: "shipyard", queue: "x" }],
      [{ service: "shipyard", namespace: 7 }],
    ]) {
      const form = new FormData();
      const metadata = { main_module: "index.js", compatibility_date: "2026-11-01", tail_consumers: tailConsumers };
      form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
      form.append("index.js", new Blob(["export default {}"], { type: "application/javascript+module" }), "index.js");
      const response = await fetch(url, {
        method: "PUT",
        headers: { authorization: `Bearer ${FAKE_CF_API_TOKEN}` },
        body: form,
      });
      expect(response.status, JSON.stringify(tailConsumers)).toBe(400);
      const body = z
        .object({ errors: z.array(z.object({ code: z.number(), message: z.string() })) })
        .parse(await response.json());
      expect(body.errors[0]?.code).toBe(10021);
      expect(body.errors[0]?.message).toContain("tail_consumers");
    }
  });
});
