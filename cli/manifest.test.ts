/**
 * CLI pieces that need no running Shipyard: the deploy manifest read and bundled by wrangler from
 * the fixture projects in test/fixtures/, the webhook signature, argument helpers and tables.
 * Run on Node by `npm run test:cli:unit` (part of `npm test`) and `npm run test:cli`.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { UsageError, intOption, timeOption } from "./args.ts";
import { assetHash } from "./assets.ts";
import { ManifestError, readManifest, signWebhook } from "./manifest.ts";
import { table } from "./output.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SAMPLE = path.join(ROOT, "examples", "sample-tenant");
const FIXTURES = path.join(ROOT, "test", "fixtures");
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

function moduleNames(manifest: Awaited<ReturnType<typeof readManifest>>): [string, string][] {
  return manifest.modules.map((module) => [module.name, module.type]);
}

async function refusal(dir: string, options: Parameters<typeof readManifest>[1] = {}): Promise<string> {
  const error = await readManifest(dir, options).then(
    () => new Error(`expected ${dir} to be refused`),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ManifestError, String(error));
  return error.message;
}

void describe("readManifest (wrangler reads and bundles)", { timeout: 120_000 }, () => {
  void it("the sample tenant (TOML, two JS modules): one bundle, its source map, bindings, migrations, vars", async () => {
    const manifest = await readManifest(SAMPLE);
    assert.equal(manifest.project_id, "sample-tenant");
    assert.equal(manifest.compatibility_date, "2026-11-01");
    assert.equal(manifest.main_module, "index.js");
    assert.deepEqual(moduleNames(manifest), [
      ["index.js", "esm"],
      ["index.js.map", "sourcemap"],
    ]);
    // wrangler's esbuild inlined src/version.js into the bundle.
    assert.match(manifest.modules[0]?.content ?? "", /src\/version\.js/);
    assert.deepEqual(manifest.config.durable_objects, { bindings: [{ name: "COUNTER", class_name: "Counter" }] });
    assert.deepEqual(manifest.config.migrations, [{ tag: "v1", new_sqlite_classes: ["Counter"] }]);
    assert.deepEqual(manifest.config.vars, { GREETING: "hello from the sample tenant" });
    assert.equal((await readManifest(SAMPLE, { projectId: "other" })).project_id, "other");
  });

  void it("JSONC with comments and trailing commas; vars of every JSON type", async () => {
    const manifest = await readManifest(path.join(FIXTURES, "jsonc-comments"));
    assert.equal(manifest.project_id, "fixture-jsonc");
    assert.deepEqual(manifest.config.vars, { GREETING: "hello", LIMITS: { max: 3, tags: ["a", "b"] }, ENABLED: true });
    assert.deepEqual(manifest.config.durable_objects?.bindings, [{ name: "COUNTER", class_name: "Counter" }]);
    assert.deepEqual(moduleNames(manifest), [
      ["index.js", "esm"],
      ["index.js.map", "sourcemap"],
    ]);
    const map: unknown = JSON.parse(manifest.modules[1]?.content ?? "null");
    assert.ok(typeof map === "object" && map !== null && "sources" in map, "a real source map");
  });

  void it("TypeScript with an npm dependency, define, alias, a Text rule and nodejs_compat, as wrangler bundles them", async () => {
    const lines: string[] = [];
    const manifest = await readManifest(path.join(FIXTURES, "ts-npm"), { onProgress: (line) => lines.push(line) });
    assert.equal(manifest.main_module, "index.js");
    assert.deepEqual(manifest.compatibility_flags, ["nodejs_compat"]);
    const main = manifest.modules[0]?.content ?? "";
    assert.match(main, /\/\/ .*node_modules\/itty-router\/index\.mjs/, "itty-router is bundled in");
    assert.doesNotMatch(main, /from "itty-router"/);
    assert.match(main, /"fixture-build"/, "define replaced BUILD_ID");
    assert.match(main, /hello, \$\{name\}/, "alias resolved greeting-lib to src/greeting.ts");
    assert.match(main, /from "node:buffer"/, "node: imports stay for nodejs_compat");
    const text = manifest.modules.find((module) => module.type === "text");
    assert.ok(text, "the .md file became a Text module by the rule");
    assert.match(text.name, /^[0-9a-f]+-notes\.md$/);
    assert.ok(main.includes(`./${text.name}`), "the bundle imports the Text module by its name");
    assert.ok(manifest.modules.some((module) => module.type === "sourcemap"));
    assert.ok(
      lines.some((line) => line.includes("wrangler │")),
      "wrangler's output is shown as progress",
    );
  });

  void it("static assets: hashed files, .assetsignore honoured, _redirects as config, the ASSETS binding", async () => {
    const manifest = await readManifest(path.join(FIXTURES, "assets"));
    assert.deepEqual(manifest.config.assets, {
      binding: "ASSETS",
      html_handling: "auto-trailing-slash",
      not_found_handling: "404-page",
      run_worker_first: ["/api/*"],
      // Config for Cloudflare, not a file to serve.
      _redirects: "/old /about 301\n",
    });
    const files = manifest.assets ?? [];
    assert.deepEqual(
      files.map((file) => [file.path, file.content_type]),
      [
        ["/404.html", "text/html"],
        ["/about.html", "text/html"],
        ["/docs/index.html", "text/html"],
        ["/index.html", "text/html"],
        ["/style.css", "text/css"],
      ],
    );
    for (const file of files) {
      const bytes = Buffer.from(file.content, "base64");
      assert.equal(file.size, bytes.byteLength);
      assert.equal(file.hash, assetHash(bytes));
    }
  });

  void it("a Vite build's redirected config (.wrangler/deploy/config.json) is what gets deployed", async () => {
    // What `vite build` with @cloudflare/vite-plugin leaves behind (written here, as a build would:
    // `.wrangler/` is never committed).
    const project = path.join(FIXTURES, "vite-redirected");
    await mkdir(path.join(project, ".wrangler", "deploy"), { recursive: true });
    await writeFile(
      path.join(project, ".wrangler", "deploy", "config.json"),
      JSON.stringify({ configPath: "../../dist/vite_fx/wrangler.json", auxiliaryWorkers: [] }),
    );
    const manifest = await readManifest(project);
    assert.equal(manifest.project_id, "fixture-vite");
    assert.deepEqual(moduleNames(manifest), [
      ["index.js", "esm"],
      ["assets/chunk-abc123.js", "esm"],
    ]);
    assert.deepEqual(manifest.config.vars, { BUILT_BY: "vite" });
    assert.deepEqual(manifest.config.assets, { not_found_handling: "single-page-application" });
    assert.deepEqual(
      manifest.assets?.map((file) => file.path),
      ["/index.html"],
    );
  });

  void it("secrets from a --secrets-file (dotenv), read by wrangler, kept apart from vars", async () => {
    const dir = await tenant({ ".dev.vars": 'API_KEY="s3cret"\nOTHER=two\n' });
    const manifest = await readManifest(path.join(FIXTURES, "jsonc-comments"), {
      secretsFile: path.join(dir, ".dev.vars"),
    });
    assert.deepEqual(manifest.config.secrets, { API_KEY: "s3cret", OTHER: "two" });
    assert.equal(manifest.config.vars?.API_KEY, undefined);
  });

  void it("finds the config as wrangler does, and takes --config", async () => {
    const dir = await tenant({
      "wrangler.json": JSON.stringify({ name: "found-json", main: "w.js", compatibility_date: "2026-11-01" }),
      "other.toml": 'name = "from-flag"\nmain = "w.js"\ncompatibility_date = "2026-11-01"\n',
      "w.js": "export default { fetch() { return new Response('ok'); } };\n",
    });
    assert.equal((await readManifest(dir)).project_id, "found-json");
    assert.equal((await readManifest(dir, { config: "other.toml" })).project_id, "from-flag");
  });

  void it("--env picks a wrangler environment, as wrangler deploy --env", async () => {
    const dir = await tenant({
      "wrangler.jsonc": `// environments
        { "name": "envy", "main": "w.js", "compatibility_date": "2026-11-01", "vars": { "STAGE": "top" },
          "env": { "staging": { "vars": { "STAGE": "staging" } } } }`,
      "w.js": "export default { fetch() { return new Response('ok'); } };\n",
    });
    const staging = await readManifest(dir, { env: "staging" });
    assert.equal(staging.project_id, "envy-staging");
    assert.deepEqual(staging.config.vars, { STAGE: "staging" });
    assert.deepEqual((await readManifest(dir)).config.vars, { STAGE: "top" });
  });

  void it("refuses every binding it cannot host, naming the file and the key, before bundling", async () => {
    for (const [key, value] of [
      ["vectorize", [{ binding: "VECTORS", index_name: "index" }]],
      ["workflows", [{ binding: "WF", name: "wf", class_name: "Flow" }]],
      ["ai", { binding: "AI" }],
      ["services", [{ binding: "OTHER", service: "other" }]],
      ["queues", { producers: [{ binding: "Q", queue: "q" }] }],
    ] as const) {
      const dir = await tenant({
        "wrangler.json": JSON.stringify({
          name: "refused",
          main: "w.js",
          compatibility_date: "2026-11-01",
          [key]: value,
        }),
        "w.js": "export default {};\n",
      });
      const message = await refusal(dir);
      assert.ok(message.includes(path.join(dir, "wrangler.json")), message);
      assert.match(message, new RegExp(`unsupported binding \`${key}\``), message);
    }
  });

  void it("sends D1 bindings with their migrations_dir files in name order (the database is provisioned by Shipyard)", async () => {
    // oxlint-disable-next-line unicorn/consistent-function-scoping -- local to this case on purpose
    const withD1 = (migrationsDir: string, files: Record<string, string> = {}) =>
      tenant({
        "wrangler.json": JSON.stringify({
          name: "with-d1",
          main: "w.js",
          compatibility_date: "2026-11-01",
          d1_databases: [
            {
              binding: "DB",
              database_name: "notes",
              database_id: "00000000-0000-4000-8000-000000000001",
              migrations_dir: migrationsDir,
            },
            { binding: "CACHE", database_name: "cache", database_id: "00000000-0000-4000-8000-000000000002" },
          ],
          kv_namespaces: [{ binding: "SESSIONS", id: "0123456789abcdef0123456789abcdef" }],
          r2_buckets: [{ binding: "UPLOADS", bucket_name: "uploads" }],
        }),
        "w.js":
          "export default { fetch: (r, env) => env.DB.prepare('select 1').all().then((x) => Response.json(x)) };\n",
        ...files,
      });
    const manifest = await readManifest(
      await withD1("db", {
        "db/0002_more.sql": "ALTER TABLE notes ADD COLUMN tag TEXT;\n",
        "db/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
        "db/README.md": "not a migration",
      }),
    );
    assert.deepEqual(manifest.config.d1_databases, [
      {
        binding: "DB",
        migrations: [
          { name: "0001_init.sql", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n" },
          { name: "0002_more.sql", sql: "ALTER TABLE notes ADD COLUMN tag TEXT;\n" },
        ],
      },
      { binding: "CACHE" },
    ]);
    assert.deepEqual(manifest.config.kv_namespaces, [{ binding: "SESSIONS" }]);
    assert.deepEqual(manifest.config.r2_buckets, [{ binding: "UPLOADS" }]);
    assert.match(await refusal(await withD1("nope")), /d1_databases DB: migrations_dir .*nope/);
  });

  void it("refuses what it cannot read or bundle, saying what to fix", async () => {
    assert.match(
      await refusal(await tenant({ "README.md": "no config" })),
      /no wrangler\.jsonc, wrangler\.json or wrangler\.toml/,
    );
    const broken = await tenant({
      "wrangler.toml": 'name = "t"\nmain = "w.ts"\ncompatibility_date = "2026-11-01"\n',
      "w.ts":
        "import { nothing } from 'not-installed-anywhere';\nexport default { fetch() { return new Response(nothing); } };\n",
    });
    const message = await refusal(broken);
    assert.match(message, /could not bundle/);
    assert.match(message, /not-installed-anywhere/);
    assert.doesNotMatch(message, /hint:/, "no package.json: nothing to install");
    const uninstalled = await tenant({
      "package.json": JSON.stringify({
        name: "u",
        private: true,
        dependencies: { "not-installed-anywhere": "^1.0.0" },
      }),
      "wrangler.toml": 'name = "u"\nmain = "w.ts"\ncompatibility_date = "2026-11-01"\n',
      "w.ts":
        "import { nothing } from 'not-installed-anywhere';\nexport default { fetch() { return new Response(nothing); } };\n",
    });
    assert.match(await refusal(uninstalled), /hint: .* has no node_modules: install them first/);
    const badName = await tenant({
      "wrangler.json": JSON.stringify({ name: "Bad_Name", main: "w.js", compatibility_date: "2026-11-01" }),
      "w.js": "export default {};\n",
    });
    assert.match(await refusal(badName), /wrangler\.json configuration[\s\S]*"name"[\s\S]*Bad_Name/);
    const external = await tenant({
      "wrangler.json": JSON.stringify({
        name: "ext",
        main: "w.js",
        compatibility_date: "2026-11-01",
        durable_objects: { bindings: [{ name: "X", class_name: "X", script_name: "elsewhere" }] },
      }),
      "w.js": "export default {};\n",
    });
    assert.match(await refusal(external), /durable_objects\.bindings X has script_name elsewhere/);
    const serviceWorker = await tenant({
      "wrangler.json": JSON.stringify({ name: "sw", main: "w.js", compatibility_date: "2026-11-01" }),
      "w.js": "addEventListener('fetch', (event) => event.respondWith(new Response('old')));\n",
    });
    assert.match(await refusal(serviceWorker), /service-worker script[\s\S]*export default \{ fetch \}/);
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
