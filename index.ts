/**
 * Shipyard's Worker entry: wiring only (STYLE.md "Thin entry"). Durable Object and Workflow
 * classes are re-exported by name so the runtime and the test plugin both see them.
 */
import { queue } from "./consumers/index.ts";
import { scheduled } from "./jobs/index.ts";
import { tail } from "./platform/tail-usage.ts";
import { createRouter } from "./producers/router.ts";

export { AuditLog } from "./durable/audit-log.do.ts";
export { CounterShard } from "./durable/counter-shard.do.ts";
export { DedupeStore } from "./durable/dedupe-store.do.ts";
export { DeployArtifacts } from "./platform/local/deploy-artifacts.do.ts";
export { LocalPlatform } from "./platform/local/local-platform.do.ts";
export { TenantObjectHost } from "./platform/local/tenant-object-host.do.ts";
export { RateLimitShard } from "./durable/rate-limit-shard.do.ts";
export { RedriveTask } from "./durable/redrive-task.do.ts";
export { RuntimeEventShard } from "./durable/runtime-event-shard.do.ts";
export { TenantGateway } from "./platform/local/tenant-gateway.ts";
export { TenantRuntime } from "./platform/local/tenant-runtime.ts";
export { TenantUsageRelay } from "./platform/local/usage-relay.ts";
export { UsageTail } from "./platform/local/usage-tail.ts";
export { TenantAssets } from "./durable/tenant-assets.do.ts";
export { TenantAssetsBinding } from "./platform/assets-binding.ts";
export { TenantDatabase } from "./durable/tenant-database.do.ts";
export { TenantD1Binding } from "./platform/d1-binding.ts";
export { TenantKV } from "./durable/tenant-kv.do.ts";
export { TenantKVBinding } from "./platform/kv-binding.ts";
export { DeployWorkflow } from "./workflows/deploy.workflow.ts";
export { EnforcementWorkflow } from "./workflows/enforcement.workflow.ts";

const router = createRouter();

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
  queue,
  scheduled,
  // Trace items of every tenant script in production (each upload names this Worker as its tail consumer).
  tail: (events, env) => tail(events, env),
} satisfies ExportedHandler<Env>;
