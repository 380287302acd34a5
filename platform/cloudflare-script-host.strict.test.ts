/**
 * The fake Workers for Platforms API refuses what the real one refuses (test/fake-cloudflare-api/
 * script-rules.ts and server.ts cite each rule's code and text), and the real client turns each
 * refusal into a deploy error that names the cause, or the documented recovery.
 */
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import { ProjectIdSchema } from "../schemas/deploy.schema.ts";
import { control } from "../test/fake-cf-control.ts";
import { FAKE_CF_API_TOKEN } from "../test/fake-cloudflare-api/protocol.ts";
import { CloudflareScriptHost, liveTagOf, uploadMetadata } from "./cloudflare-script-host.ts";
import { hostError } from "../test/script-host-error.ts";
import type { ScriptModule, UploadRequest } from "./script-host.ts";

const ACCOUNT_ID = "acct-test";
const NAMESPACE = "shipyard-tenants-test";

function host(overrides: { accountId?: string; namespace?: string } = {}): CloudflareScriptHost {
  return new CloudflareScriptHost({
    accountId: overrides.accountId ?? ACCOUNT_ID,
    namespace: overrides.namespace ?? NAMESPACE,
    apiToken: FAKE_CF_API_TOKEN,
    baseUrl: env.CF_API_BASE_URL,
    retries: { attempts: 2, baseDelayMs: 10, maxDelayMs: 1_000 },
  });
}

function scriptName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

async function classesOf(script: string): Promise<string[]> {
  const url = new URL(`/__control/scripts/${encodeURIComponent(script)}`, env.CF_API_BASE_URL);
  url.searchParams.set("account", ACCOUNT_ID);
  url.searchParams.set("namespace", NAMESPACE);
  const response = await fetch(url);
  return z.object({ classes: z.array(z.string()) }).parse(await response.json()).classes;
}

const esm = (name: string, content: string): ScriptModule => ({ name, type: "esm", content });

function request(name: string, overrides: Partial<UploadRequest> = {}): UploadRequest {
  return {
    scriptName: name,
    mainModule: "index.js",
    modules: [esm("index.js", "export class Counter {}\nexport default { fetch: () => new Response('ok') };")],
    bindings: [],
    compatibilityDate: "2026-11-01",
    ...overrides,
  };
}

describe("the fake API refuses what Cloudflare refuses; the client names the cause", () => {
  it("a main module with a syntax error: 10021 'Uncaught SyntaxError … at index.js:<line>:<col>'", async ({
    expect,
  }) => {
    const error = await hostError(
      host().upload(request(scriptName("syntax"), { modules: [esm("index.js", "export default {\n  fetch( {\n};")] })),
    );
    expect(error.code).toBe("invalid_script");
    expect(error.message).toMatch(/10021 Uncaught SyntaxError: .+\n {2}at index\.js:3:\d+/);
    expect(error.message).toContain("does not start on Cloudflare");
  });

  it("an import of a module that was not uploaded: 10021 'No such module' naming it and its importer", async ({
    expect,
  }) => {
    const name = scriptName("imports");
    const main = esm(
      "index.js",
      'import { DurableObject } from "cloudflare:workers";\nimport { greet } from "./lib/greet.js";\nexport default { fetch: () => new Response(greet(DurableObject.name)) };',
    );
    const error = await hostError(host().upload(request(name, { modules: [main] })));
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain('No such module "lib/greet.js".\n  imported from "index.js"');
    // With the module uploaded (and a runtime module imported) the same code is accepted.
    const greet = esm("lib/greet.js", "export const greet = (who) => 'hi ' + who;");
    await expect(host().upload(request(name, { modules: [main, greet] }))).resolves.toMatchObject({
      migrationTag: null,
    });
  });

  it("rollback path: a version that no longer exports a class with live objects is 10064 and the live version stays", async ({
    expect,
  }) => {
    const name = scriptName("rollback");
    const v1 = await host().upload(
      request(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
    );
    const older = [esm("index.js", "export default { fetch: () => new Response('before Counter existed') };")];
    const error = await hostError(host().upload(request(name, { modules: older })));
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain(
      "10064 New version of script does not export class 'Counter' which is depended on by existing Durable Objects.",
    );
    expect(error.message).toContain("export the class again, or delete it with a deleted_classes migration");
    expect((await host().getScript(name))?.versionId).toBe(v1.versionId);
    // The documented way out: a delete-class migration (which destroys the objects).
    await host().upload(
      request(name, {
        modules: older,
        migrations: { old_tag: "v1", new_tag: "v2", steps: [{ deleted_classes: ["Counter"] }] },
      }),
    );
    expect(await classesOf(name)).toEqual([]);
  });

  it("a migration creating a class the code does not export is 10070", async ({ expect }) => {
    const error = await hostError(
      host().upload(
        request(scriptName("ghost"), { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Ghost"] }] } }),
      ),
    );
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain(
      "10070 Cannot apply new-class migration to class 'Ghost' that is not exported by script.",
    );
    expect(error.message).toContain("a migration creates a Durable Object class the code does not export");
  });

  it("a 30 MiB module is over the size limit: 10027, and nothing is stored", async ({ expect }) => {
    // Random bytes as base64: incompressible, so it is over 10 MiB after gzip as well.
    const chunk = new Uint8Array(49_152);
    const parts: string[] = [];
    for (let made = 0; made < 30 * 1024 * 1024; made += 65_536) {
      crypto.getRandomValues(chunk);
      parts.push(btoa(String.fromCharCode(...chunk)));
    }
    const name = scriptName("huge");
    const big = esm(
      "index.js",
      `export const blob = "${parts.join("")}";\nexport default { fetch: () => new Response("big") };`,
    );
    const error = await hostError(host().upload(request(name, { modules: [big] })));
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain("10027 Your Worker exceeded the size limit of 10 MiB.");
    expect(error.message).toContain("over the Worker size limit");
    expect(await host().getScript(name)).toBeNull();
  });

  it("script names: 69 characters is refused by the API (and by Shipyard before it); '_' is allowed by the API, not by Shipyard", async ({
    expect,
  }) => {
    const long = `a${"b".repeat(67)}c`;
    expect(long).toHaveLength(69);
    const error = await hostError(host().upload(request(long)));
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain(`Script name '${long}' is invalid`);
    // The API's own examples name scripts "this-is_my_script-01".
    await expect(host().upload(request(`under_score_${crypto.randomUUID().slice(0, 8)}`))).resolves.toBeDefined();
    // Project ids, which are the script names, never reach the API with either.
    expect(ProjectIdSchema.safeParse(long).success).toBe(false);
    expect(ProjectIdSchema.safeParse("under_score").success).toBe(false);
  });

  it("an unknown account or dispatch namespace is a configuration error naming the setting, never 'no such script'", async ({
    expect,
  }) => {
    const name = scriptName("where");
    const account = await hostError(host({ accountId: "0123456789abcdef" }).getScript(name));
    expect(account.code).toBe("unavailable");
    expect(account.message).toContain(
      "7003 Could not route to /client/v4/accounts/0123456789abcdef/workers/dispatch/namespaces/",
    );
    expect(account.message).toContain("check CF_ACCOUNT_ID");
    const upload = await hostError(host({ accountId: "0123456789abcdef" }).upload(request(name)));
    expect(upload.code).toBe("unavailable");

    const missing = `tenants-${crypto.randomUUID().slice(0, 8)}`;
    const namespace = await hostError(host({ namespace: missing }).getScript(name));
    expect(namespace.code).toBe("unavailable");
    expect(namespace.message).toContain(`the dispatch namespace ${missing} was not found`);
    expect(namespace.message).toContain("CF_DISPATCH_NAMESPACE");
    // Once the namespace exists, the same calls work: a missing script is null again.
    await control({ action: "namespace", account: ACCOUNT_ID, namespace: missing });
    expect(await host({ namespace: missing }).getScript(name)).toBeNull();
  });

  it("an unknown compatibility flag: 10021 'No such compatibility flag'", async ({ expect }) => {
    const name = scriptName("flags");
    const error = await hostError(
      host().upload(request(name, { compatibilityFlags: ["nodejs_compat", "no_such_flag_xyz"] })),
    );
    expect(error.code).toBe("invalid_script");
    expect(error.message).toContain("10021 No such compatibility flag: no_such_flag_xyz");
    await expect(host().upload(request(name, { compatibilityFlags: ["nodejs_compat"] }))).resolves.toBeDefined();
  });

  it("transferred_classes moves a class from another script of the namespace; from a script without it, refused", async ({
    expect,
  }) => {
    const from = scriptName("from");
    const to = scriptName("to");
    await host().upload(request(from, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }));
    await host().upload(
      request(to, {
        migrations: {
          new_tag: "v1",
          steps: [{ transferred_classes: [{ from: "Counter", from_script: from, to: "Counter" }] }],
        },
        bindings: [{ type: "durable_object_namespace", name: "COUNTER", class_name: "Counter" }],
      }),
    );
    expect(await classesOf(to)).toEqual(["Counter"]);
    expect(await classesOf(from)).toEqual([]);

    const again = await hostError(
      host().upload(
        request(scriptName("to2"), {
          migrations: {
            new_tag: "v1",
            steps: [{ transferred_classes: [{ from: "Counter", from_script: from, to: "Counter" }] }],
          },
        }),
      ),
    );
    expect(again.code).toBe("invalid_script");
    expect(again.message).toContain(`Cannot transfer class 'Counter' from script '${from}'`);
  });
});

/** A raw upload, for the single-step form the client does not send. */
async function rawUpload(name: string, migrations: unknown): Promise<{ status: number; body: unknown }> {
  const form = new FormData();
  const metadata = { main_module: "index.js", compatibility_date: "2026-11-01", migrations };
  form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
  const main = "export class Counter {}\nexport default { fetch: () => new Response('ok') };";
  form.append("index.js", new Blob([main], { type: "application/javascript+module" }), "index.js");
  const url = new URL(
    `accounts/${ACCOUNT_ID}/workers/dispatch/namespaces/${NAMESPACE}/scripts/${name}`,
    `${env.CF_API_BASE_URL}/`,
  );
  const response = await fetch(url, {
    method: "PUT",
    headers: { Authorization: `Bearer ${FAKE_CF_API_TOKEN}` },
    body: form,
  });
  return { status: response.status, body: await response.json() };
}

describe("the migration forms the API takes", () => {
  it("the single-step form (new_tag + new_sqlite_classes at the top) applies like one step; mixed with steps it is refused", async ({
    expect,
  }) => {
    const name = scriptName("single");
    expect((await rawUpload(name, { new_tag: "v1", new_sqlite_classes: ["Counter"] })).status).toBe(200);
    expect(await host().getScript(name)).toMatchObject({ migrationTag: "v1" });
    expect(await classesOf(name)).toEqual(["Counter"]);
    const mixed = await rawUpload(scriptName("mixed"), { new_tag: "v1", new_classes: ["Counter"], steps: [] });
    expect(mixed.status).toBe(400);
    // The client always sends the multi-step form, which carries renames and transfers alike.
    const metadata = uploadMetadata(
      request(name, { migrations: { new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] } }),
      undefined,
      "shipyard",
    );
    expect(metadata.migrations).toEqual({ new_tag: "v1", steps: [{ new_sqlite_classes: ["Counter"] }] });
  });

  it("liveTagOf reads both 10079 wordings", ({ expect }) => {
    expect(liveTagOf("Actor migration tag precondition failed, got tag '' when expected tag is 'v6'")).toBe("v6");
    expect(liveTagOf("Actor migration tag precondition failed, got tag 'v1' when expected tag is ''")).toBeNull();
    expect(liveTagOf("Migration tag precondition failed; current tag is v1")).toBe("v1");
    expect(liveTagOf("Migration tag precondition failed")).toBeUndefined();
  });
});
