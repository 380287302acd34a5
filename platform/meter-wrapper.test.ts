import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import { type MeterWrapperInput, WRAPPER_MODULE, generateMeterWrapper } from "./meter-wrapper.ts";

/**
 * Every runtime test runs the generated entry module for real: it is loaded with a tenant module
 * into a dynamic Worker (Worker Loader) whose Durable Object classes run as facets. The facet
 * parent is a uniquely named CounterShard, borrowed only for its `ctx.facets` (each facet has its
 * own storage). Two harnesses:
 *   - a probe facet that constructs the exported classes itself, with its own ctx and a recording
 *     USAGE (a dynamic Worker's env only takes serializable values and stubs, so a recorder cannot be
 *     passed in from here), calls handlers in-process and returns results and any data points;
 *   - the exported class itself as the facet, so workerd dispatches fetch and RPC to it.
 * The entry module no longer meters (usage is measured outside the tenant): every test also checks
 * that it writes nothing, even to a USAGE the env holds, and exports the tenant's own classes.
 */

const TENANT = `
import { DurableObject } from "cloudflare:workers";

class Base extends DurableObject {
  // Inherited RPC method.
  async ping() {
    return "pong";
  }
}

export class Counter extends Base {
  #count = 0;
  async fetch(request) {
    // An internal call: must not produce its own data point.
    const n = await this.increment(1);
    return new Response("count " + n + " " + new URL(request.url).pathname);
  }
  async increment(by) {
    this.#count += by;
    return this.#count;
  }
  async slow(ms) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return "slept";
  }
  async alarm() {
    this.#count = 100;
  }
  webSocketMessage(ws, message) {
    return "message " + message;
  }
  webSocketClose() {}
  webSocketError() {}
  async boom() {
    throw new RangeError("tenant failure");
  }
  get label() {
    return "counter";
  }
  static create() {
    return "static";
  }
}

// A class that does not extend DurableObject (no RPC over the runtime, but fetch and alarm work).
export class Legacy {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
  async fetch() {
    return new Response("legacy");
  }
  async alarm() {}
  async method() {
    return "method";
  }
}

// A named entrypoint: passes through \`export *\` (a main module may only export handlers and classes).
export const other = {
  fetch() {
    return new Response("named entrypoint");
  },
};

export default {
  fetch() {
    return new Response("tenant default");
  },
};
`;

const TENANT_WITHOUT_DEFAULT = `
import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {
  async fetch() {
    return new Response("no default");
  }
}
`;

// Constructs wrapped classes and calls them in-process. It is itself a Durable Object run as a
// facet because the DurableObject base constructor only accepts a real DurableObjectState: the
// wrapped classes get the probe's ctx.
const PROBE = `
import { DurableObject } from "cloudflare:workers";
import * as wrapped from "./${WRAPPER_MODULE}";
import * as tenant from "./tenant.js";

function usageFor(mode, points) {
  switch (mode) {
    case "record":
      return { USAGE: { writeDataPoint: (point) => void points.push(point) } };
    case "throw":
      return { USAGE: { writeDataPoint: () => { throw new Error("dataset unavailable"); } } };
    case "reject":
      return { USAGE: { writeDataPoint: () => Promise.reject(new Error("dataset unavailable")) } };
    default:
      return {};
  }
}

export class Probe extends DurableObject {
  async run({ className, usage, calls }) {
    const points = [];
    const object = new wrapped[className](this.ctx, usageFor(usage, points));
    const results = [];
    for (const call of calls) {
      try {
        const args = call.method === "fetch" ? [new Request("http://do/" + (call.args[0] ?? ""))] : call.args;
        let value = await object[call.method](...args);
        if (value instanceof Response) value = await value.text();
        results.push({ ok: true, value: value ?? null });
      } catch (error) {
        results.push({ ok: false, name: error.name, message: error.message });
      }
    }
    return {
      results,
      points,
      label: object.label ?? null,
      className: wrapped[className].name,
      staticCall: typeof wrapped[className].create === "function" ? wrapped[className].create() : null,
      sameClass: wrapped[className] === tenant[className],
    };
  }
}
`;

// Facet harness: the wrapped class with a recording USAGE, as a class workerd instantiates.
const FACET_PROBE = `
import { Counter } from "./${WRAPPER_MODULE}";
const points = [];
const usage = { writeDataPoint: (point) => void points.push(point) };
export class CounterProbe extends Counter {
  constructor(ctx, env) {
    super(ctx, { ...env, USAGE: usage });
  }
}
export default { fetch: () => Response.json(points) };
`;

const ProbeAnswer = z.object({
  results: z.array(
    z.union([
      z.object({ ok: z.literal(true), value: z.unknown() }),
      z.object({ ok: z.literal(false), name: z.string(), message: z.string() }),
    ]),
  ),
  points: z.array(z.unknown()),
  label: z.string().nullable(),
  className: z.string(),
  staticCall: z.string().nullable(),
  sameClass: z.boolean(),
});

const COMPATIBILITY_DATE = "2026-11-01";

function wrapperFor(classes: string[]): string {
  return generateMeterWrapper({ tenantMainModule: "tenant.js", durableObjectClasses: classes });
}

type Call = { method: string; args: unknown[] };

interface ProbeObject extends Rpc.DurableObjectBranded {
  run(input: { className: string; usage: string; calls: Call[] }): Promise<unknown>;
}

/** A fresh facet parent: a uniquely named CounterShard lends its `ctx.facets`. */
function facetParent() {
  return env.COUNTER_SHARD.getByName(`meter-wrapper-${crypto.randomUUID()}`);
}

async function probe(className: string, usage: "record" | "throw" | "reject" | "none", calls: Call[]) {
  const answer = await runInDurableObject(facetParent(), async (_, state) => {
    const worker = env.LOADER.load({
      compatibilityDate: COMPATIBILITY_DATE,
      mainModule: "metering-probe.js",
      modules: {
        [WRAPPER_MODULE]: { js: wrapperFor(["Counter", "Legacy"]) },
        "tenant.js": TENANT,
        "metering-probe.js": PROBE,
      },
    });
    const facet = state.facets.get<ProbeObject>("probe", () => ({
      class: worker.getDurableObjectClass<ProbeObject>("Probe"),
    }));
    return facet.run({ className, usage, calls });
  });
  return ProbeAnswer.parse(answer);
}

describe("generateMeterWrapper (run in a dynamic Worker)", () => {
  it("exports the tenant's own classes and writes nothing, even to a USAGE the env holds", async ({ expect }) => {
    const answer = await probe("Counter", "record", [
      { method: "fetch", args: ["a"] },
      { method: "alarm", args: [] },
      { method: "webSocketMessage", args: [null, "hi"] },
      { method: "webSocketClose", args: [] },
      { method: "webSocketError", args: [] },
      { method: "increment", args: [5] },
      { method: "ping", args: [] },
      { method: "boom", args: [] },
    ]);
    expect(answer.results).toEqual([
      { ok: true, value: "count 1 /a" },
      { ok: true, value: null },
      { ok: true, value: "message hi" },
      { ok: true, value: null },
      { ok: true, value: null },
      { ok: true, value: 105 },
      { ok: true, value: "pong" },
      { ok: false, name: "RangeError", message: "tenant failure" },
    ]);
    expect(answer).toMatchObject({ points: [], sameClass: true });
  });

  it("leaves getters, statics and other exports alone and keeps the class name", async ({ expect }) => {
    const answer = await probe("Counter", "record", []);
    expect(answer).toMatchObject({
      label: "counter",
      className: "Counter",
      staticCall: "static",
      points: [],
    });
  });

  it("exports a class that does not extend DurableObject as it is", async ({ expect }) => {
    const answer = await probe("Legacy", "record", [
      { method: "fetch", args: [] },
      { method: "alarm", args: [] },
      { method: "method", args: [] },
    ]);
    expect(answer.results).toEqual([
      { ok: true, value: "legacy" },
      { ok: true, value: null },
      { ok: true, value: "method" },
    ]);
    expect(answer).toMatchObject({ points: [], sameClass: true });
  });

  it.for(["none", "throw", "reject"] as const)("keeps working when USAGE is %s", async (usage, { expect }) => {
    const answer = await probe("Counter", usage, [
      { method: "fetch", args: ["x"] },
      { method: "boom", args: [] },
    ]);
    expect(answer.results).toEqual([
      { ok: true, value: "count 1 /x" },
      { ok: false, name: "RangeError", message: "tenant failure" },
    ]);
    expect(answer.points).toEqual([]);
  });

  it("passes the tenant's default export through as the Worker's handler", async ({ expect }) => {
    const worker = env.LOADER.load({
      compatibilityDate: COMPATIBILITY_DATE,
      mainModule: WRAPPER_MODULE,
      modules: { [WRAPPER_MODULE]: { js: wrapperFor(["Counter"]) }, "tenant.js": TENANT },
    });
    expect(await (await worker.getEntrypoint().fetch("http://tenant/")).text()).toBe("tenant default");
    // The star re-export carries the tenant's other entrypoints too.
    expect(await (await worker.getEntrypoint("other").fetch("http://tenant/")).text()).toBe("named entrypoint");
  });

  it("loads a tenant module without a default export", async ({ expect }) => {
    await runInDurableObject(facetParent(), async (_, state) => {
      const worker = env.LOADER.load({
        compatibilityDate: COMPATIBILITY_DATE,
        mainModule: WRAPPER_MODULE,
        modules: { [WRAPPER_MODULE]: { js: wrapperFor(["Counter"]) }, "tenant.js": TENANT_WITHOUT_DEFAULT },
        // No USAGE at all: the binding was removed.
        env: {},
      });
      const facet = state.facets.get("counter", () => ({ class: worker.getDurableObjectClass("Counter") }));
      expect(await (await facet.fetch("http://do/")).text()).toBe("no default");
      // The Worker started; only its (empty) default handler has no fetch.
      await expect(worker.getEntrypoint().fetch("http://tenant/")).rejects.toThrow(/does not export a fetch/);
    });
  });

  it("runs as a real facet: workerd dispatches fetch and RPC to the tenant's class, and nothing is written", async ({
    expect,
  }) => {
    interface TenantCounter extends Rpc.DurableObjectBranded {
      increment(by: number): Promise<number>;
      ping(): Promise<string>;
      boom(): Promise<void>;
    }
    await runInDurableObject(facetParent(), async (_, state) => {
      const worker = env.LOADER.load({
        compatibilityDate: COMPATIBILITY_DATE,
        mainModule: "facet-probe.js",
        modules: {
          [WRAPPER_MODULE]: { js: wrapperFor(["Counter"]) },
          "tenant.js": TENANT,
          "facet-probe.js": FACET_PROBE,
        },
      });
      const facet = state.facets.get<TenantCounter>("counter", () => ({
        class: worker.getDurableObjectClass<TenantCounter>("CounterProbe"),
      }));
      expect(await (await facet.fetch("http://do/path")).text()).toBe("count 1 /path");
      expect(await facet.increment(2)).toBe(3);
      expect(await facet.ping()).toBe("pong");
      // Built-in error types keep their name across RPC. (Awaited in try/catch: handing the RPC
      // promise itself to expect() leaves a rejection vitest reports as unhandled.)
      let error: unknown = null;
      try {
        await facet.boom();
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({ name: "RangeError", message: "tenant failure" });
      expect(await (await worker.getEntrypoint().fetch("http://probe/")).json()).toEqual([]);
    });
  });

  it("fails to start with a clear message when a listed class is not exported", async ({ expect }) => {
    const worker = env.LOADER.load({
      compatibilityDate: COMPATIBILITY_DATE,
      mainModule: WRAPPER_MODULE,
      modules: { [WRAPPER_MODULE]: { js: wrapperFor(["Counter", "Missing"]) }, "tenant.js": TENANT },
    });
    await expect(worker.getEntrypoint().fetch("http://tenant/")).rejects.toThrow(
      /Durable Object class Missing is not exported by \.\/tenant\.js/,
    );
  });
});

describe("generateMeterWrapper input validation", () => {
  const valid = { tenantMainModule: "src/index.js", durableObjectClasses: ["Counter", "$Room_2"] };

  it("accepts identifiers and nested module names", ({ expect }) => {
    expect(generateMeterWrapper(valid)).toContain('from "./src/index.js"');
  });

  const invalid: [string, Partial<MeterWrapperInput>][] = [
    ["class name with code", { durableObjectClasses: ["Counter; globalThis.x = 1"] }],
    ["reserved word", { durableObjectClasses: ["default"] }],
    ["internal prefix", { durableObjectClasses: ["__shipyardClass"] }],
    ["duplicate class", { durableObjectClasses: ["Counter", "Counter"] }],
    ["parent directory", { tenantMainModule: "../index.js" }],
    ["absolute path", { tenantMainModule: "/index.js" }],
    ["empty segment", { tenantMainModule: "src//index.js" }],
    ["quote in module", { tenantMainModule: 'index.js"; import "x' }],
    ["the wrapper itself", { tenantMainModule: WRAPPER_MODULE }],
  ];

  it.for(invalid)("refuses %s", ([, override], { expect }) => {
    expect(() => generateMeterWrapper({ ...valid, ...override })).toThrow(Error);
  });
});
