/**
 * `npm run dev`: the whole pipeline on http://127.0.0.1:8787 with local state, no account.
 *   PORT                 listen port (default 8787)
 *   SHIPYARD_STATE_DIR   local state directory (default .wrangler/state); migrations go to the same
 *   npm run dev -- <args>  extra arguments for `wrangler dev`, e.g. --var SHARD_COUNT:64
 */
import path from "node:path";
import { ROOT, applyLocalMigrations, ensureDevVars, spawnWrangler } from "./lib/wrangler.ts";

const port = process.env.PORT ?? "8787";
const stateDir = path.resolve(ROOT, process.env.SHIPYARD_STATE_DIR ?? ".wrangler/state");

ensureDevVars();
console.log(`applying D1 migrations to ${stateDir}`);
await applyLocalMigrations(stateDir);

const child = spawnWrangler([
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
]);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
