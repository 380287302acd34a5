import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { LOCAL_ONLY_CLASSES, LOCAL_ONLY_SERVICES, productionConfig } from "./production-config.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

void describe("the production config npm run deploy ships", () => {
  const out = path.join(ROOT, ".wrangler", "deploy");
  const config = productionConfig(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"), ROOT, out);

  void it("declares no Worker Loader and no binding of the local platform's Durable Objects", () => {
    assert.equal("worker_loaders" in config, false);
    const text = JSON.stringify(config.durable_objects);
    for (const name of LOCAL_ONLY_CLASSES) assert.ok(!text.includes(`"class_name":"${name}"`), name);
    assert.ok(text.includes('"class_name":"RuntimeEventShard"'), "the pipeline's own objects stay");
  });

  void it("binds no service of the local tenant runtime process (wrangler.tenants.toml)", () => {
    assert.ok(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").includes('service = "shipyard-tenants"'));
    const text = JSON.stringify(config.services ?? []);
    for (const name of LOCAL_ONLY_SERVICES) assert.ok(!text.includes(`"service":"${name}"`), name);
  });

  void it("keeps every migration (the classes stay exported) and runs tenants on Cloudflare", () => {
    const migrations = JSON.stringify(config.migrations);
    for (const name of LOCAL_ONLY_CLASSES) assert.ok(migrations.includes(name), name);
    assert.equal(z.object({ SCRIPT_HOST: z.string() }).parse(config.vars).SCRIPT_HOST, "cloudflare");
    // The edge's CF-Connecting-IP is the source there; locally (wrangler.toml) the socket is.
    assert.equal(z.object({ CLIENT_ADDRESS: z.string() }).parse(config.vars).CLIENT_ADDRESS, "cf-connecting-ip");
  });

  void it("binds the tenants' dispatch namespace as DISPATCHER, which only production declares", () => {
    const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    const namespace = z.object({ CF_DISPATCH_NAMESPACE: z.string().min(1) }).parse(config.vars).CF_DISPATCH_NAMESPACE;
    assert.deepEqual(config.dispatch_namespaces, [{ binding: "DISPATCHER", namespace }]);
    assert.equal(toml.includes("dispatch_namespaces"), false, "wrangler dev has no local dispatch namespace");
    assert.throws(
      () => productionConfig(toml.replace(/CF_DISPATCH_NAMESPACE = ".*"/, 'CF_DISPATCH_NAMESPACE = ""'), ROOT, out),
      /CF_DISPATCH_NAMESPACE/,
    );
  });

  void it("names this Worker (its `name`) as SHIPYARD_WORKER_NAME, the tail consumer every tenant upload carries", () => {
    const vars = z.object({ SHIPYARD_WORKER_NAME: z.string() }).parse(config.vars);
    assert.equal(vars.SHIPYARD_WORKER_NAME, config.name);
    assert.equal(vars.SHIPYARD_WORKER_NAME, "shipyard");
  });

  void it("points main and migrations_dir at the repository from the config's own folder", () => {
    assert.equal(path.resolve(out, String(config.main)), path.join(ROOT, "index.ts"));
    const [database] = z.array(z.object({ migrations_dir: z.string() })).parse(config.d1_databases);
    assert.equal(path.resolve(out, database?.migrations_dir ?? ""), path.join(ROOT, "migrations"));
  });

  void it("ships the on-call console's assets from the repository, the Worker first", () => {
    const assets = z.object({ directory: z.string(), binding: z.string(), run_worker_first: z.literal(true) });
    const parsed = assets.parse(config.assets);
    assert.equal(path.resolve(out, parsed.directory), path.join(ROOT, "console", "dist"));
    assert.equal(parsed.binding, "ASSETS");
  });
});
