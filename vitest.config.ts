import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
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
// wrangler's own notes ("Using secrets defined in process.env", once per test file) are not news.
process.env.WRANGLER_LOG ??= "warn";

/**
 * What the workerd runtime itself prints — dropped connections of tests that abort on purpose,
 * uncaught injected faults, each with a native stack — goes to `.wrangler/test-runtime.log`, not
 * the terminal, so a passing run prints its summary only (`SHIPYARD_TEST_RUNTIME_LOGS=1` keeps them
 * on the terminal). The vitest plugin writes each runtime message to this process's stdout/stderr
 * in one call and offers no hook of its own (its `handleStructuredLogs` is fixed), hence the
 * filter on those streams. Logs of Shipyard's own code are the tests' console output, which vitest
 * shows for failing tests only (`silent: "passed-only"` below).
 */
const RUNTIME_MESSAGE =
  /^(uncaught exception;|exception = |stack: \/|workerd\/|Received a FetchEvent but we lack a handler)/;
if (process.env.SHIPYARD_TEST_RUNTIME_LOGS !== "1") {
  const logFile = path.resolve(".wrangler/test-runtime.log");
  mkdirSync(path.dirname(logFile), { recursive: true });
  const runtimeLog = createWriteStream(logFile);
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    // `write` is overloaded (with and without an encoding); the filter passes every call through
    // unchanged but the runtime's strings, so one signature whose rest is never read stands for both.
    stream.write = (chunk: string | Uint8Array, ...rest: never[]) =>
      typeof chunk === "string" && RUNTIME_MESSAGE.test(chunk) ? runtimeLog.write(chunk) : write(chunk, ...rest);
  }
}

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      // The function form reads what test/global-setup.ts provides (the fake Cloudflare API's URL).
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // A real KV binding the local KV shim is compared with (test/kv.e2e.test.ts).
          kvNamespaces: ["TEST_KV"],
          // The tenant runtime is a second workerd process under `npm run dev` and the stack
          // (wrangler.tenants.toml); here it is the same entrypoint inside this one workerd, so the
          // dispatch code the tests run is the code the stack runs (docs/decisions/0016-13-tenant-process.md).
          serviceBindings: { TENANT_RUNTIME: { name: "shipyard", entrypoint: "TenantRuntime" } },
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
              auth_failures: { limit: 1_000_000, window_s: 60 },
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
      exclude: ["node_modules/**", ".wrangler/**", "cli/**", "**/*.node.test.ts"],
      setupFiles: ["./test/setup.ts"],
      globalSetup: ["./test/global-setup.ts"],
      // A passing test's logs are noise; a failing test's are the first thing to read.
      silent: "passed-only" as const,
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  };
});
