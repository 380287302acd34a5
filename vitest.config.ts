import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Tests run inside workerd (Miniflare) against the real wrangler.toml: real queues, SQLite Durable
 * Objects, D1 and Workflows. Secrets are fixed here so tests never depend on a local .dev.vars.
 */
const TEST_SECRETS = {
  INGEST_KEYS: "dev-ingest-key,second-ingest-key",
  ADMIN_TOKEN: "dev-admin-token",
  WEBHOOK_SECRET: "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1zaGlweWFyZA==",
  CF_API_TOKEN: "",
};
// wrangler reads required secrets from process.env when there is no .dev.vars (a fresh clone).
Object.assign(process.env, TEST_SECRETS);

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      // The function form reads what test/global-setup.ts provides (the fake Cloudflare API's URL).
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ...TEST_SECRETS,
            // Short flush delay keeps end-to-end tests fast; the 5 s default has its own test.
            FLUSH_DELAY_MS: "200",
            // Many test files post with the same keys and the admin token, concurrently and in any
            // order; production limits (wrangler.toml) would make them flaky. Rate-limit tests use
            // small limits of their own (producers/rate-limit.test.ts).
            RATE_LIMITS: JSON.stringify({
              ingest: { limit: 1_000_000, window_s: 60 },
              webhook: { limit: 1_000_000, window_s: 60 },
              admin: { limit: 1_000_000, window_s: 60 },
            }),
            TEST_MIGRATIONS: migrations,
            // Fake Workers for Platforms API (test/fake-cloudflare-api), started by the globalSetup.
            CF_API_BASE_URL: inject("cfApiBaseUrl"),
          },
        },
      })),
    ],
    test: {
      include: ["**/*.test.ts"],
      // cli/ tests run on Node against a live local stack (`npm run test:cli`), not in workerd.
      exclude: ["node_modules/**", ".wrangler/**", "cli/**"],
      setupFiles: ["./test/setup.ts"],
      globalSetup: ["./test/global-setup.ts"],
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  };
});
