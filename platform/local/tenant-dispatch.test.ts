import { describe, it } from "vitest";
import { RUNTIME_ANSWER_HEADER, RUNTIME_TARGET_HEADER } from "./tenant-runtime.ts";
import { dispatchToRuntime, startupCheckInRuntime } from "./tenant-dispatch.ts";

const CURRENT = { script: "p", versionId: "v1", versionKey: "p:0:v1:0", generation: 0 };
const UPLOAD = {
  scriptName: "p",
  mainModule: "index.js",
  modules: [],
  bindings: [],
  compatibilityDate: "2026-11-01",
};

/** A runtime that never answers (process B spinning on a tenant's loop). */
const stalled = { fetch: () => new Promise<Response>(() => undefined) };

describe("dispatch to the tenant runtime (T1.5)", () => {
  it("T1.5 a runtime that does not answer within the deadline is a timeout, not a hang", async ({ expect }) => {
    const answered = await dispatchToRuntime(stalled, CURRENT, new Request("http://t/"), 20);
    expect(answered).toMatchObject({ ok: false, error: { reason: "timeout" } });
  });

  it("T1.5 a runtime that is gone or stops mid-call is unavailable", async ({ expect }) => {
    const lost = {
      fetch: () => Promise.reject(new Error("Network connection lost.")),
    };
    expect(await dispatchToRuntime(lost, CURRENT, new Request("http://t/"))).toMatchObject({
      ok: false,
      error: { reason: "unavailable", message: expect.stringContaining("Network connection lost") },
    });
    // The dev registry's own answer while process B is not registered: not the runtime's (unmarked).
    const missing = {
      fetch: async () => new Response('Worker "shipyard-tenants" not found.', { status: 503 }),
    };
    expect(await dispatchToRuntime(missing, CURRENT, new Request("http://t/"))).toMatchObject({
      ok: false,
      error: { reason: "unavailable" },
    });
  });

  it("T1.5 the runtime gets the version from the control plane, never from the client", async ({ expect }) => {
    let seen: Headers | null = null;
    const runtime = {
      fetch: async (request: Request) => {
        seen = request.headers;
        return new Response("hi", { status: 201, headers: { [RUNTIME_ANSWER_HEADER]: "1.5", "x-tenant": "kept" } });
      },
    };
    const forged = new Request("http://t/", {
      headers: {
        [RUNTIME_TARGET_HEADER]: JSON.stringify({ ...CURRENT, script: "someone-else" }),
        [RUNTIME_ANSWER_HEADER]: "1",
      },
    });
    const answered = await dispatchToRuntime(runtime, CURRENT, forged);
    if (!answered.ok) throw new Error(answered.error.message);
    const headers: Headers = seen ?? new Headers();
    expect(JSON.parse(headers.get(RUNTIME_TARGET_HEADER) ?? "null")).toEqual(CURRENT);
    expect(headers.has(RUNTIME_ANSWER_HEADER)).toBe(false);
    expect(answered.value.status).toBe(201);
    expect(await answered.value.text()).toBe("hi");
    expect(answered.value.headers.get("x-tenant")).toBe("kept");
    expect(answered.value.headers.has(RUNTIME_ANSWER_HEADER)).toBe(false);
    expect(answered.value.headers.get("server-timing")).toMatch(
      /shipyard-tenant-runtime;dur=1\.5, shipyard-dispatch;dur=/,
    );
  });

  it("T1.5 the deploy's startup check has a deadline too, and its answer is checked", async ({ expect }) => {
    const never = { startupCheck: () => new Promise<unknown>(() => undefined) };
    expect(await startupCheckInRuntime(never, UPLOAD, [], 20)).toMatchObject({
      ok: false,
      error: { reason: "timeout" },
    });
    const fails = { startupCheck: async () => ({ ok: false, error: { message: "Uncaught Error: boom" } }) };
    expect(await startupCheckInRuntime(fails, UPLOAD, [])).toEqual({
      ok: false,
      error: { message: "Uncaught Error: boom" },
    });
  });
});
