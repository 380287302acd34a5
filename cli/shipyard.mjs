#!/usr/bin/env node
// The `shipyard` bin (package.json "bin"). The CLI is TypeScript run by Node directly (type
// stripping, Node >= 22.18). npm puts node_modules/.bin first on PATH for `npx shipyard` and npm
// scripts, so `node` there is the project's pinned Node 24; when this shim is started by an older
// Node anyway (a PATH without node_modules/.bin, e.g. `./cli/shipyard.mjs` from a shell on Node
// 20), it re-runs itself with the pinned Node instead of failing on the first type annotation.
// Plain JavaScript on purpose: it must parse on any Node.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);

function pinnedNode() {
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve("node/package.json"));
    const bin = path.join(dir, "bin", "node");
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

if (process.features.typescript) {
  const { main } = await import("./main.ts");
  process.exitCode = await main(process.argv.slice(2));
} else {
  const node = process.env.SHIPYARD_CLI_REEXEC ? null : pinnedNode();
  if (!node) {
    process.stderr.write(
      `shipyard needs Node >= 22.18 (TypeScript type stripping); this is Node ${process.versions.node}.\n` +
        "Run `npm install` in the project (it brings the pinned Node 24) and use `npx shipyard`.\n",
    );
    process.exit(1);
  }
  const child = spawn(node, [self, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, SHIPYARD_CLI_REEXEC: "1" },
  });
  // The terminal sends Ctrl-C to the whole foreground group: the child handles it (a redrive asks
  // its task to cancel), so this parent only waits for the child's exit code.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 2 : 1)));
}
