/**
 * The binding only the tenant runtime (process B, wrangler.tenants.toml) has: its `TenantR2Binding`
 * forwards each call to the control plane's `TenantR2Store`, which holds `TENANT_R2` (the one local
 * tenant bucket lives in process A's state, where `down` and the sizes read it). Optional: absent in
 * the control plane and the test pool, where the binding reads `TENANT_R2` itself.
 */
declare global {
  namespace Cloudflare {
    interface Env {
      TENANT_R2_STORE?: Fetcher;
    }
  }
  interface Env {
    TENANT_R2_STORE?: Fetcher;
  }
}

/** This export makes the file a module, as `declare global` needs. */
export type R2StoreFetcher = Fetcher;
