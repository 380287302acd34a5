import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      /** D1 migrations read by vitest.config.ts, applied in test/setup.ts. */
      TEST_MIGRATIONS: D1Migration[];
      /** Base URL of the fake Cloudflare API (test/fake-cloudflare-api), from test/global-setup.ts. */
      CF_API_BASE_URL: string;
      /** A real KV namespace (vitest.config.ts), the reference for the local KV shim's cases. */
      TEST_KV: KVNamespace;
      /** A real R2 bucket (vitest.config.ts), the reference for the local R2 shim's cases. */
      TEST_R2: R2Bucket;
    }
  }
}
