/**
 * CLI pieces that need no running Shipyard: the deploy manifest from a tenant directory, the
 * webhook signature, argument helpers and tables. Run by `npm run test:cli` (node:test).
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { UsageError, intOption, timeOption } from "./args.ts";
import { ManifestError, readManifest, signWebhook } from "./manifest.ts";
import { table } from "./output.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SAMPLE = path.join(ROOT, "examples", "sample-tenant");
const temps: string[] = [];

async function tenant(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "shipyard-cli-"));
  temps.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

after(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

void describe("readManifest", () => {
  void it("reads the sample tenant: main module, its folder's modules, bindings, migrations, vars", async () => {
    const manifest = await readManifest(SAMPLE);
    assert.equal(manifest.project_id, "sample-tenant");
    assert.equal(manifest.compatibility_date, "2026-11-01");
    assert.equal(manifest.main_module, "src/index.js");
    assert.deepEqual(
      manifest.modules.map((module) => [module.name, module.type]),
      [
        ["src/index.js", "esm"],
        ["src/version.js", "esm"],
      ],
    );
    assert.deepEqual(manifest.config.durable_objects, { bindings: [{ name: "COUNTER", class_name: "Counter" }] });
    assert.deepEqual(manifest.config.migrations, [{ tag: "v1", new_sqlite_classes: ["Counter"] }]);
    assert.deepEqual(manifest.config.vars, { GREETING: "hello from the sample tenant" });
    assert.equal((await readManifest(SAMPLE, { projectId: "other" })).project_id, "other");
  });

  void it("takes .js/.mjs/.cjs/.wasm/.txt under the main module's folder, nested too, and nothing else", async () => {
    const dir = await tenant({
      "wrangler.toml": 'name = "t1"\nmain = "dist/worker.mjs"\ncompatibility_date = "2026-11-01"\n',
      "dist/worker.mjs": "export default {};\n",
      "dist/lib/util.cjs": "module.exports = 1;\n",
      "dist/add.wasm": new Uint8Array([0, 97, 115, 109]),
      "dist/words.txt": "hello\n",
      "dist/worker.mjs.map": "{}",
      "dist/node_modules/x/index.js": "skip",
      "src/other.js": "outside the main module's folder",
    });
    const manifest = await readManifest(dir);
    assert.deepEqual(
      manifest.modules.map((module) => [module.name, module.type]),
      [
        ["dist/worker.mjs", "esm"],
        ["dist/add.wasm", "wasm"],
        ["dist/lib/util.cjs", "cjs"],
        ["dist/words.txt", "text"],
      ],
    );
    assert.equal(manifest.modules[1]?.content, Buffer.from([0, 97, 115, 109]).toString("base64"));
    assert.deepEqual(manifest.config.durable_objects, { bindings: [] });
  });

  void it("refuses what it cannot deploy, saying what to fix", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ "wrangler.toml": 'name = "t"\nmain = "a.js"\n', "a.js": "" }, /compatibility_date/],
      [{ "wrangler.toml": 'name = "t"\nmain = "src/a.ts"\ncompatibility_date = "2026-11-01"\n' }, /built JavaScript/],
      [
        {
          "wrangler.toml": 'name = "t"\nmain = "a.js"\ncompatibility_date = "2026-11-01"\n[vars]\nN = 1\n',
          "a.js": "",
        },
        /string vars only/,
      ],
      [{ "wrangler.toml": 'main = "a.js"\ncompatibility_date = "2026-11-01"\n', "a.js": "" }, /--project/],
      [
        { "wrangler.toml": 'name = "Not A Slug"\nmain = "a.js"\ncompatibility_date = "2026-11-01"\n', "a.js": "" },
        /project_id/,
      ],
      [{ "wrangler.toml": "name = = broken" }, /not valid TOML/],
      [{ "wrangler.toml": 'name = "t"\nmain = "missing.js"\ncompatibility_date = "2026-11-01"\n' }, /not found/],
    ];
    for (const [files, message] of cases) {
      await assert.rejects(readManifest(await tenant(files)), (error: unknown) => {
        assert.ok(error instanceof ManifestError, String(error));
        assert.match(error.message, message);
        return true;
      });
    }
    await assert.rejects(readManifest(path.join(tmpdir(), "no-such-tenant-dir")), ManifestError);
  });
});

void describe("signWebhook", () => {
  void it("is Standard Webhooks v1: base64 HMAC-SHA256 of id.timestamp.body with the secret's bytes", async () => {
    const secret = "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1zaGlweWFyZA==";
    const key = await crypto.subtle.importKey(
      "raw",
      Buffer.from(secret.slice("whsec_".length), "base64"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const expected = Buffer.from(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode('msg_1.1700000000.{"a":"é"}')),
    ).toString("base64");
    assert.equal(signWebhook(secret, "msg_1", 1_700_000_000, '{"a":"é"}'), `v1,${expected}`);
  });
});

void describe("arguments", () => {
  void it("intOption and timeOption accept what they document and refuse the rest as usage errors", () => {
    assert.equal(intOption("limit", "5"), 5);
    assert.equal(intOption("limit", undefined), undefined);
    assert.throws(() => intOption("limit", "0"), UsageError);
    assert.throws(() => intOption("limit", "5x"), UsageError);
    assert.equal(timeOption("from", "1700000000000"), 1_700_000_000_000);
    assert.equal(timeOption("from", "2026-11-01T00:00:00Z"), Date.parse("2026-11-01T00:00:00Z"));
    assert.equal(timeOption("from", "2h", 10_000_000), 10_000_000 - 7_200_000);
    assert.throws(() => timeOption("from", "yesterday"), UsageError);
  });

  void it("tables align columns, cut long cells and show empty cells as -", () => {
    const rows = [
      { a: "x", b: "a long value here" },
      { a: "longer", b: null },
    ];
    assert.equal(
      table(rows, [
        { header: "A", value: (row) => row.a },
        { header: "B", value: (row) => row.b, max: 8 },
      ]),
      "A       B\nx       a long …\nlonger  -",
    );
    assert.equal(table([], [{ header: "A", value: () => 1 }]), "(none)");
  });
});
