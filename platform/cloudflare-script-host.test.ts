/**
 * The real CloudflareScriptHost against the fake Workers for Platforms API over HTTP
 * (test/fake-cloudflare-api, started by test/global-setup.ts). Timing claims are checked on the
 * fake's own receive timestamps, never on a timer in the test.
 */
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import { type ControlCommand, FAKE_CF_API_TOKEN } from "../test/fake-cloudflare-api/protocol.ts";
import { htmlAsset } from "../test/asset-file.ts";
import { hostError } from "../test/script-host-error.ts";
import { CloudflareScriptHost, parseRetryAfter, uploadMetadata } from "./cloudflare-script-host.ts";
import { type ScriptModule, TENANT_LIMITS, type UploadAssets, type UploadRequest } from "./script-host.ts";

const ACCOUNT_ID = "acct-test";
const NAMESPACE = "shipyard-tenants-test";
/** Three attempts, short backoff: the whole file stays within a few seconds. */
const RETRIES = { attempts: 3, baseDelayMs: 20, maxDelayMs: 5_000 };

const LoggedRequestsSchema = z.array(
  z.object({
    method: z.string(),
    path: z.string(),
    script: z.string().nullable(),
    status: z.number(),
    receivedAt: z.number(),
  }),
);
const StoredScriptSchema = z.object({
  main_module: z.string(),
  classes: z.array(z.string()),
  modules: z.array(
    z.object({ name: z.string(), content_type: z.string(), size: z.number(), bytes: z.array(z.number()) }),
  ),
});

function host(overrides: { apiToken?: string } = {}): CloudflareScriptHost {
  return new CloudflareScriptHost({
    accountId: ACCOUNT_ID,
    namespace: NAMESPACE,
    apiToken: overrides.apiToken ?? FAKE_CF_API_TOKEN,
    baseUrl: env.CF_API_BASE_URL,
    retries: RETRIES,
  });
}

/** A script name no other test uses, so faults and request logs scoped to it stay ours. */
function scriptName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

function controlUrl(path: string): URL {
  return new URL(path, env.CF_API_BASE_URL);
}

async function control(command: ControlCommand): Promise<void> {
  const response = await fetch(controlUrl("/__control"), { method: "POST", body: JSON.stringify(command) });
  if (!response.ok) throw new Error(`fake control refused ${JSON.stringify(command)}: ${await response.text()}`);
}

async function requestsFor(script: string): Promise<z.infer<typeof LoggedRequestsSchema>> {
  const response = await fetch(controlUrl(`/__control/requests?script=${encodeURIComponent(script)}`));
  return LoggedRequestsSchema.parse(await response.json());
}

async function storedScript(script: string): Promise<z.infer<typeof StoredScriptSchema>> {
  const response = await fetch(controlUrl(`/__control/scripts/${encodeURIComponent(script)}`));
  return StoredScriptSchema.parse(await response.json());
}

const MAIN: ScriptModule = {
  name: "index.js",
  type: "esm",
  content: "export class Counter {}\nexport class Other {}\nexport default { fetch() { return new Response('ok'); } };",
};

function uploadRequest(name: string, overrides: Partial<UploadRequest> = {}): UploadRequest {
  return {
    scriptName: name,
    mainModule: "index.js",
    modules: [MAIN],
    bindings: [],
    compatibilityDate: "2026-11-01",
    ...overrides,
  };
}

describe("CloudflareScriptHost against the fake Workers for Platforms API", () => {
  it("uploads a first migration; getScript then reports the tag, bindings and version", async ({ expect }) => {
    const name = scriptName("first");
    const result = await host().upload(
      uploadRequest(name, {
        bindings: [
          { type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" },
          { type: "plain_text", name: "GREETING", text: "hi" },
        ],
        migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] },
      }),
    );
    expect(result.migrationTag).toBe("v1");

    const info = await host().getScript(name);
    expect(info).toEqual({
      scriptName: name,
      migrationTag: "v1",
      versionId: result.versionId,
      bindings: [
        { type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" },
        { type: "plain_text", name: "GREETING", text: "hi" },
      ],
    });

    // A later upload without migrations keeps the tag, and says so.
    const again = await host().upload(
      uploadRequest(name, { bindings: [{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }] }),
    );
    expect(again.migrationTag).toBe("v1");
  });

  it("sends each module type as its own part, decoding data and wasm from base64", async ({ expect }) => {
    const name = scriptName("modules");
    await host().upload(
      uploadRequest(name, {
        modules: [
          MAIN,
          { name: "lib.cjs", type: "cjs", content: "module.exports = 1;" },
          { name: "notes.txt", type: "text", content: "hello" },
          { name: "blob.bin", type: "data", content: "AAEC/w==" },
          { name: "add.wasm", type: "wasm", content: "AGFzbQEAAAA=" },
          { name: "index.js.map", type: "sourcemap", content: "{}" },
        ],
      }),
    );
    const stored = await storedScript(name);
    expect(stored.main_module).toBe("index.js");
    const byName = new Map(stored.modules.map((module) => [module.name, module]));
    expect(byName.get("index.js")?.content_type).toBe("application/javascript+module");
    expect(byName.get("lib.cjs")?.content_type).toBe("application/javascript");
    expect(byName.get("notes.txt")?.content_type).toBe("text/plain");
    expect(byName.get("blob.bin")).toMatchObject({ content_type: "application/octet-stream", bytes: [0, 1, 2, 255] });
    expect(byName.get("add.wasm")).toMatchObject({
      content_type: "application/wasm",
      bytes: [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    });
    expect(byName.get("index.js.map")?.content_type).toBe("application/source-map");
  });

  it("a stale or missing old_tag fails with migration_tag_mismatch and the live tag (10079, newer wording)", async ({
    expect,
  }) => {
    const name = scriptName("stale");
    await host().upload(
      uploadRequest(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
    );
    await host().upload(
      uploadRequest(name, { migrations: { old_tag: "v1", new_tag: "v2", steps: [{ new_sqlite_classes: ["Other"] }] } }),
    );

    const stale = await hostError(
      host().upload(uploadRequest(name, { migrations: { old_tag: "v1", new_tag: "v3", steps: [] } })),
    );
    expect(stale.code).toBe("migration_tag_mismatch");
    expect(stale.details?.liveTag).toBe("v2");
    expect(stale.message).toContain("10079");

    const missing = await hostError(host().upload(uploadRequest(name, { migrations: { new_tag: "v3", steps: [] } })));
    expect(missing).toMatchObject({ code: "migration_tag_mismatch", details: { liveTag: "v2" } });

    expect(missing.message).toContain("got tag '' when expected tag is 'v2'");

    // "expected tag is ''": the script has no tag yet, which is an answer (null), not "unknown".
    const fresh = scriptName("fresh");
    const noTag = await hostError(
      host().upload(uploadRequest(fresh, { migrations: { old_tag: "v9", new_tag: "v10", steps: [] } })),
    );
    expect(noTag.code).toBe("migration_tag_mismatch");
    expect(noTag.details?.liveTag).toBeNull();
    expect((await host().getScript(name))?.migrationTag).toBe("v2");
  });

  it("10079 in the older wording: 'current tag is v1' is parsed; with no tag named, liveTag stays undefined (re-read it)", async ({
    expect,
  }) => {
    const name = scriptName("legacy");
    await control({ action: "legacy_10079", script: name });
    await host().upload(
      uploadRequest(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
    );
    const stale = await hostError(host().upload(uploadRequest(name, { migrations: { new_tag: "v2", steps: [] } })));
    expect(stale).toMatchObject({ code: "migration_tag_mismatch", details: { liveTag: "v1" } });
    expect(stale.message).toContain("Migration tag precondition failed; current tag is v1");

    const fresh = scriptName("legacy-fresh");
    await control({ action: "legacy_10079", script: fresh });
    const noTag = await hostError(
      host().upload(uploadRequest(fresh, { migrations: { old_tag: "v9", new_tag: "v10", steps: [] } })),
    );
    expect(noTag.code).toBe("migration_tag_mismatch");
    expect(noTag.details?.liveTag).toBeUndefined();
  });

  it("a Durable Object binding whose class no migration declared is invalid_script", async ({ expect }) => {
    const name = scriptName("no-migration");
    const error = await hostError(
      host().upload(
        uploadRequest(name, {
          bindings: [{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }],
        }),
      ),
    );
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain("Cannot create binding for class 'Counter'");
    expect(await host().getScript(name)).toBeNull();

    // Deleting the class in a migration while still binding it is refused the same way.
    await host().upload(
      uploadRequest(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
    );
    const deleted = await hostError(
      host().upload(
        uploadRequest(name, {
          bindings: [{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }],
          migrations: { old_tag: "v1", new_tag: "v2", steps: [{ deleted_classes: ["Counter"] }] },
        }),
      ),
    );
    expect(deleted.code).toBe("invalid_script");
  });

  it("a main module that is missing or uploaded twice is invalid_script", async ({ expect }) => {
    const missing = await hostError(host().upload(uploadRequest(scriptName("no-main"), { mainModule: "worker.js" })));
    expect(missing.code).toBe("invalid_script");
    expect(missing.message).toContain("worker.js");

    const twice = await hostError(host().upload(uploadRequest(scriptName("main-twice"), { modules: [MAIN, MAIN] })));
    expect(twice.code).toBe("invalid_script");
    expect(twice.message).toContain("more than once");

    const noDate = await hostError(host().upload(uploadRequest(scriptName("no-date"), { compatibilityDate: "" })));
    expect(noDate.code).toBe("invalid_script");
  });

  it("setBindings replaces the bindings and getScript shows them", async ({ expect }) => {
    const name = scriptName("bindings");
    await host().upload(
      uploadRequest(name, {
        bindings: [{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }],
        migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] },
      }),
    );
    const before = await host().getScript(name);

    await host().setBindings(name, [
      { type: "plain_text", name: "MODE", text: "enforced" },
      { type: "analytics_engine", name: "USAGE", dataset: "usage" },
    ]);
    const after = await host().getScript(name);
    expect(after?.bindings).toEqual([
      { type: "plain_text", name: "MODE", text: "enforced" },
      { type: "analytics_engine", name: "USAGE", dataset: "usage" },
    ]);
    // The code and the migration tag stay.
    expect(after?.migrationTag).toBe("v1");
    expect(after?.versionId).toBe(before?.versionId);

    const undeclared = await hostError(
      host().setBindings(name, [{ type: "durable_object_namespace", name: "X", class_name: "Nope" }]),
    );
    expect(undeclared.code).toBe("invalid_script");
    expect((await hostError(host().setBindings(scriptName("ghost"), []))).code).toBe("not_found");
  });

  it("a settings change keeps what it does not mean to change: a secret, a var and an out-of-band binding survive remove and restore", async ({
    expect,
  }) => {
    const name = scriptName("keep");
    const counter = { type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" } as const;
    await host().upload(
      uploadRequest(name, {
        bindings: [
          counter,
          { type: "plain_text", name: "MODE", text: "live" },
          { type: "secret_text", name: "API_KEY", text: "s3cret" },
        ],
        migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] },
      }),
    );
    // Someone binds a KV namespace out of band (the dashboard, wrangler): a kind this port does not model.
    const form = new FormData();
    const outOfBand = [
      counter,
      { type: "plain_text", name: "MODE", text: "live" },
      { type: "inherit", name: "API_KEY" },
      { type: "kv_namespace", name: "CACHE", namespace_id: "0f2ac74b498b48028cb68387c421e279" },
    ];
    form.append("settings", new Blob([JSON.stringify({ bindings: outOfBand })], { type: "application/json" }));
    const patched = await fetch(
      `${env.CF_API_BASE_URL}/accounts/${ACCOUNT_ID}/workers/dispatch/namespaces/${NAMESPACE}/scripts/${name}/settings`,
      { method: "PATCH", headers: { authorization: `Bearer ${FAKE_CF_API_TOKEN}` }, body: form },
    );
    expect(patched.status).toBe(200);

    const stored = async () =>
      z
        .object({ bindings: z.array(z.looseObject({ name: z.string(), type: z.string() })) })
        .parse(await (await fetch(controlUrl(`/__control/scripts/${name}`))).json())
        .bindings.toSorted((a, b) => a.name.localeCompare(b.name));
    const live = await host().getScript(name);
    // The API never shows a secret's value; the port reads the secret without it.
    expect(live?.bindings).toContainEqual({ type: "secret_text", name: "API_KEY" });

    // Enforcement: every binding but the Durable Object one.
    await host().setBindings(name, live?.bindings.filter((binding) => binding.name !== "COUNTER") ?? []);
    expect(await stored()).toEqual([
      { type: "secret_text", name: "API_KEY", text: "s3cret" },
      { type: "kv_namespace", name: "CACHE", namespace_id: "0f2ac74b498b48028cb68387c421e279" },
      { type: "plain_text", name: "MODE", text: "live" },
    ]);

    // Restore: the Durable Object binding back, the rest untouched.
    const removed = await host().getScript(name);
    await host().setBindings(name, [...(removed?.bindings ?? []), counter]);
    expect(await stored()).toEqual([
      { type: "secret_text", name: "API_KEY", text: "s3cret" },
      { type: "kv_namespace", name: "CACHE", namespace_id: "0f2ac74b498b48028cb68387c421e279" },
      counter,
      { type: "plain_text", name: "MODE", text: "live" },
    ]);
  });

  it("deleteScript removes the script and its classes; deleting again is a no-op", async ({ expect }) => {
    const name = scriptName("delete");
    await host().upload(
      uploadRequest(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
    );
    await host().deleteScript(name);
    expect(await host().getScript(name)).toBeNull();
    await expect(host().deleteScript(name)).resolves.toBeUndefined();
    // The delete went out with force=true (the fake refuses it otherwise for a script with classes).
    expect((await requestsFor(name)).filter((request) => request.method === "DELETE").map((r) => r.status)).toEqual([
      200, 404,
    ]);
  });

  it("429 with Retry-After: waits at least that long, then succeeds", async ({ expect }) => {
    const name = scriptName("throttled");
    await control({ action: "fail", status: 429, count: 1, retryAfter: "1", script: name });
    const result = await host().upload(uploadRequest(name));
    expect(result.versionId).not.toBe("");

    const [first, second, ...rest] = await requestsFor(name);
    expect(rest).toEqual([]);
    expect(first?.status).toBe(429);
    expect(second?.status).toBe(200);
    // The fake's own clock: the retry arrived no sooner than Retry-After allowed.
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1000);
  });

  it("a Retry-After longer than the call may wait fails at once as unavailable", async ({ expect }) => {
    const name = scriptName("long-wait");
    await control({ action: "fail", status: 429, count: 1, retryAfter: "120", script: name });
    const error = await hostError(host().upload(uploadRequest(name)));
    expect(error.code).toBe("unavailable");
    expect(error.details?.status).toBe(429);
    expect(error.message).toContain("Retry-After is 120 s");
    expect(await requestsFor(name)).toHaveLength(1);
  });

  it("500 twice, then success: three requests", async ({ expect }) => {
    const name = scriptName("flaky");
    await control({ action: "fail", status: 500, count: 2, script: name });
    await host().upload(uploadRequest(name));
    expect((await requestsFor(name)).map((request) => request.status)).toEqual([500, 500, 200]);
  });

  it("500 forever: unavailable after the bounded number of attempts", async ({ expect }) => {
    const name = scriptName("down");
    await control({ action: "fail", status: 503, count: -1, script: name });
    const error = await hostError(host().getScript(name));
    expect(error.code).toBe("unavailable");
    expect(error.details?.status).toBe(503);
    expect(error.message).toContain(`after ${RETRIES.attempts} attempts`);
    expect(await requestsFor(name)).toHaveLength(RETRIES.attempts);
  });

  it("network errors are retried, then reported as unavailable", async ({ expect }) => {
    // Nothing listens on the discard port of 127.0.0.1: every attempt is refused. (workerd prints
    // "uncaught exception ... Network connection lost" for each one even though the client catches it.)
    const unreachable = new CloudflareScriptHost({
      accountId: ACCOUNT_ID,
      namespace: NAMESPACE,
      apiToken: FAKE_CF_API_TOKEN,
      baseUrl: "http://127.0.0.1:9/client/v4",
      retries: RETRIES,
    });
    const error = await hostError(unreachable.getScript(scriptName("unreachable")));
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain(`after ${RETRIES.attempts} attempts: network error`);
  });

  it("a 400 is final: one request, no retry", async ({ expect }) => {
    const name = scriptName("bad-request");
    // The fault never runs out, so a client that retried 4xx would show more than one request.
    await control({ action: "fail", status: 400, count: -1, script: name });
    const error = await hostError(host().upload(uploadRequest(name)));
    expect(error.code).toBe("invalid_script");
    expect(error.details?.status).toBe(400);
    expect(await requestsFor(name)).toHaveLength(1);
  });

  it("a wrong token is a clear, unretried error", async ({ expect }) => {
    const name = scriptName("wrong-token");
    const error = await hostError(host({ apiToken: "not-the-token" }).upload(uploadRequest(name)));
    expect(error.code).toBe("unavailable");
    expect(error.details?.status).toBe(403);
    expect(error.message).toContain("10000 Authentication error");
    expect(error.message).toContain("API token was refused");
    expect(await requestsFor(name)).toHaveLength(1);
  });
});

const asset = htmlAsset;

const StoredAssetsSchema = z.object({
  assets: z
    .object({ manifest: z.record(z.string(), z.object({ hash: z.string(), size: z.number() })), config: z.unknown() })
    .nullable(),
});

describe("CloudflareScriptHost: static assets through the upload session", () => {
  it("session → buckets (session JWT) → completion token in the script upload; known files are not sent again", async ({
    expect,
  }) => {
    const name = scriptName("assets");
    const files = await Promise.all(
      ["/index.html", "/a.html", "/b.html", "/c.html", "/d.html"].map((path) => asset(path, `page ${path} ${name}`)),
    );
    const config: UploadAssets["config"] = {
      html_handling: "auto-trailing-slash",
      not_found_handling: "404-page",
      run_worker_first: ["/api/*"],
      _headers: "/*\n  X-Frame-Options: DENY\n",
    };
    await host().upload(
      uploadRequest(name, { bindings: [{ type: "assets", name: "ASSETS" }], assets: { files, config } }),
    );
    const stored = StoredAssetsSchema.parse(await (await fetch(controlUrl(`/__control/scripts/${name}`))).json());
    expect(stored.assets?.config).toEqual(config);
    expect(stored.assets?.manifest).toEqual(
      Object.fromEntries(files.map((file) => [file.path, { hash: file.hash, size: file.size }])),
    );
    // The fake asks for buckets of 3: two bucket uploads, the last one answering 201.
    expect(
      (await requestsFor(name)).map(
        (request) => `${request.method} ${request.path.split("/").at(-1)} ${request.status}`,
      ),
    ).toEqual(["POST assets-upload-session 200", "POST upload 202", "POST upload 201", `PUT ${name} 200`]);

    // Same files and one new: only the new one is uploaded.
    const more = [...files, await asset("/e.html", `new page ${name}`)];
    await host().upload(
      uploadRequest(name, { bindings: [{ type: "assets", name: "ASSETS" }], assets: { files: more, config } }),
    );
    expect(
      (await requestsFor(name))
        .slice(4)
        .map((request) => `${request.method} ${request.path.split("/").at(-1)} ${request.status}`),
    ).toEqual(["POST assets-upload-session 200", "POST upload 201", `PUT ${name} 200`]);
  });

  it("a session that fails with 503 is retried; an assets binding without assets is refused", async ({ expect }) => {
    const name = scriptName("assets-retry");
    const files = [await asset("/index.html", `retry ${name}`)];
    // The session (first request) passes; the fault then hits the bucket upload once.
    await control({ action: "fail", status: 503, count: 1, script: name });
    const first = await hostError(host().upload(uploadRequest(name, { assets: { files, config: {} } }))).catch(
      () => null,
    );
    expect(first).toBeNull();
    const statuses = (await requestsFor(name)).map((request) => request.status);
    expect(statuses).toEqual([503, 200, 201, 200]);

    const bare = scriptName("assets-bare");
    const refused = await hostError(
      host().upload(uploadRequest(bare, { bindings: [{ type: "assets", name: "ASSETS" }] })),
    );
    expect(refused.code).toBe("invalid_script");
    expect(refused.message).toContain("of type assets needs metadata.assets");
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates, and ignores garbage", ({ expect }) => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe("upload metadata", () => {
  it("T1.3 caps every invocation of the user Worker with `limits` (cpu_ms, subrequests)", ({ expect }) => {
    const metadata = uploadMetadata(
      { scriptName: "p", mainModule: "index.js", modules: [], bindings: [], compatibilityDate: "2026-11-01" },
      undefined,
      "shipyard",
    );
    expect(metadata.limits).toEqual({ cpu_ms: TENANT_LIMITS.cpuMs, subrequests: TENANT_LIMITS.subRequests });
    expect(TENANT_LIMITS.cpuMs).toBeLessThan(30_000);
  });
});
