/**
 * `npm run deploy`: ship Shipyard to Cloudflare. Checks what would make the deploy fail late
 * (placeholder D1 id, missing credentials), applies the D1 migrations remotely, then
 * `wrangler deploy`. Creating the resources once is described in README "Deploying to Cloudflare".
 *   npm run deploy              apply migrations + deploy
 *   npm run deploy -- --dry-run wrangler's dry run (bundles, checks the config, uploads nothing)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { productionConfig } from "./lib/production-config.ts";
import { ROOT, runWrangler } from "./lib/wrangler.ts";

const PLACEHOLDER_DB = "00000000-0000-4000-8000-000000000000";
const args = process.argv.slice(2);
const dryRun = args.includes("--dry-run");

function fail(message: string): never {
  console.error(`deploy: ${message}`);
  process.exit(1);
}

const config = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
// wrangler.toml less what only the local platform needs (scripts/lib/production-config.ts).
const outDir = path.join(ROOT, ".wrangler", "deploy");
const productionPath = path.join(outDir, "production.wrangler.json");
mkdirSync(outDir, { recursive: true });
writeFileSync(productionPath, `${JSON.stringify(productionConfig(config, ROOT, outDir), null, 2)}\n`);
console.log(
  `deploy: production config ${path.relative(ROOT, productionPath)} (no Worker Loader, no local platform bindings)`,
);
if (!dryRun) {
  if (config.includes(PLACEHOLDER_DB)) {
    fail(
      "wrangler.toml still has the local placeholder database_id. Run `npx wrangler d1 create shipyard` " +
        "and put the id it prints into [[d1_databases]] database_id.",
    );
  }
  if (!process.env.CLOUDFLARE_API_TOKEN && !process.env.CI) {
    console.log("deploy: no CLOUDFLARE_API_TOKEN; using your `wrangler login` session");
  }
  console.log("deploy: applying D1 migrations to the remote database");
  await runWrangler(["d1", "migrations", "apply", "DB", "--remote", "--config", productionPath], {
    env: { ...process.env, CI: "true" },
  });
}
console.log(dryRun ? "deploy: dry run (nothing is uploaded)" : "deploy: wrangler deploy");
await runWrangler([
  "deploy",
  "--config",
  productionPath,
  ...(dryRun ? ["--dry-run", "--outdir", path.join(ROOT, ".wrangler", "dry-run")] : []),
  ...args.filter((a) => a !== "--dry-run"),
]);
console.log(
  dryRun
    ? "deploy: dry run complete"
    : "deploy: done. Smoke test: GET /v1/health, then README 'Deploying to Cloudflare' step 5.",
);
