/**
 * Helpers shared by the npm scripts (dev, demo, bench, load): locate the project's own wrangler
 * and run it with the Node that runs this script (the pinned Node 24, via npm's PATH).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(import.meta.url);
export const WRANGLER_BIN = path.join(
  path.dirname(require.resolve("wrangler/package.json", { paths: [ROOT] })),
  "bin",
  "wrangler.js",
);

/** Creates `.dev.vars` from `.dev.vars.example` when missing (the contract's local credentials). */
export function ensureDevVars(): void {
  const target = path.join(ROOT, ".dev.vars");
  if (!existsSync(target)) {
    copyFileSync(path.join(ROOT, ".dev.vars.example"), target);
    console.log("created .dev.vars from .dev.vars.example (local credentials)");
  }
}

/** Runs wrangler to completion; rejects on a non-zero exit. */
export function runWrangler(args: string[], options: SpawnOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRANGLER_BIN, ...args], { cwd: ROOT, stdio: "inherit", ...options });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`wrangler ${args[0]} exited with ${code ?? signal}`)),
    );
  });
}

/** Starts wrangler (long-running) and returns the child process. */
export function spawnWrangler(args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [WRANGLER_BIN, ...args], {
    cwd: ROOT,
    stdio: "inherit",
    ...options,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...options.env },
  });
}

/** Applies the D1 migrations to the local state in `stateDir` (the same state `wrangler dev` uses). */
export async function applyLocalMigrations(stateDir: string, options: SpawnOptions = {}): Promise<void> {
  await runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir], {
    ...options,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", ...options.env },
  });
}
