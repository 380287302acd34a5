/**
 * The tenant runtime's Worker entry (process B, `wrangler.tenants.toml`): wiring only. It holds the
 * Worker Loader, the host objects whose facets are the tenants' Durable Objects, the gateway and
 * the bindings a tenant isolate is given, and the entrypoint the control plane dispatches to
 * (platform/local/tenant-runtime.ts). Its own HTTP port answers only the watchdog's probe: tenant
 * traffic reaches it through the control plane's `TENANT_RUNTIME` service binding.
 */
export { TenantObjectHost } from "./platform/local/tenant-object-host.do.ts";
export { TenantGateway } from "./platform/local/tenant-gateway.ts";
export { TenantRuntime } from "./platform/local/tenant-runtime.ts";
export { UsageTail } from "./platform/local/usage-tail.ts";
export { TenantAssetsBinding } from "./platform/assets-binding.ts";
export { TenantD1Binding } from "./platform/d1-binding.ts";
export { TenantKVBinding } from "./platform/kv-binding.ts";

/** When this process's isolate started: the probe reports it, so a restart shows. */
const BOOTED_AT = new Date().toISOString();

export default {
  // The watchdog's probe (scripts/lib/tenant-process.ts): answering it takes the isolate's one
  // thread, so a tenant spinning on that thread makes it time out.
  fetch: (request) =>
    new URL(request.url).pathname === "/health"
      ? Response.json({ ok: true, runtime: "tenants", booted_at: BOOTED_AT })
      : Response.json(
          { error: { code: "not_found", message: "the tenant runtime serves no HTTP routes" } },
          { status: 404 },
        ),
} satisfies ExportedHandler<Env>;
