/**
 * `npm run dev`: the whole pipeline on http://127.0.0.1:8787 with local state, no account.
 *   PORT                 listen port (default 8787)
 *   SHIPYARD_STATE_DIR   local state directory (default .wrangler/state); migrations go to the same
 *   npm run dev -- <args>  extra arguments for `wrangler dev`, e.g. --var SHARD_COUNT:64
 *
 * Two processes: the control plane (`wrangler dev`, wrangler.toml) and the tenant runtime where
 * tenant code runs (wrangler.tenants.toml, supervised: restarted when it exits or stops answering,
 * scripts/lib/tenant-process.ts). Its tenant Durable Object storage is `<state dir>/tenants`.
 */
import { rmSync } from "node:fs";
import path from "node:path";
import { freePort } from "./lib/stack.ts";
import { TenantProcess } from "./lib/tenant-process.ts";
import { ROOT, applyLocalMigrations, ensureDevVars, spawnWrangler } from "./lib/wrangler.ts";

const port = process.env.PORT ?? "8787";
const stateDir = path.resolve(ROOT, process.env.SHIPYARD_STATE_DIR ?? ".wrangler/state");
// The two processes' own dev registry; entries a killed run left behind would block re-registering.
const registryPath = path.join(stateDir, "dev-registry");
rmSync(registryPath, { recursive: true, force: true });

ensureDevVars();
console.log(`applying D1 migrations to ${stateDir}`);
await applyLocalMigrations(stateDir);

const tenants = new TenantProcess({
  stateDir: path.join(stateDir, "tenants"),
  registryPath,
  port: await freePort(),
  inspectorPort: await freePort(),
  onLine: (text) => console.log(text),
});
const child = spawnWrangler(
  [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    port,
    "--persist-to",
    stateDir,
    "--test-scheduled",
    "--show-interactive-dev-session=false",
    ...process.argv.slice(2),
  ],
  { env: { WRANGLER_REGISTRY_PATH: registryPath } },
);
tenants.start().catch((error: unknown) => console.error(`the tenant runtime did not start: ${String(error)}`));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    child.kill(signal);
    void tenants.stop();
  });
}
child.on("exit", (code) => {
  void tenants.stop().finally(() => process.exit(code ?? 0));
});
