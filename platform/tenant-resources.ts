/**
 * Resources Shipyard provisions for a tenant (issue 14; D1 so far): the port the deploy workflow
 * talks to, its two implementations' factory, and the names resources get on the platform.
 *   - locally (platform/local/local-resources.ts): a `TenantDatabase` Durable Object per database;
 *   - on Cloudflare (platform/cloudflare-resources.ts): a D1 database created through the API.
 */
import type { MigrationFailure, TenantMigration } from "../durable/tenant-database.do.ts";
import type { Result } from "../lib/result.ts";
import { CloudflareResources } from "./cloudflare-resources.ts";
import { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import { scriptHost } from "./index.ts";
import { LocalResources } from "./local/local-resources.ts";

export type { MigrationFailure, TenantMigration };

export interface ResourceHost {
  /** The id of the D1 database called `name`, created if there is none (a retry finds the first one). */
  ensureD1(name: string): Promise<{ id: string }>;
  /** Applies the migrations `d1_migrations` does not list yet, in order; stops at the first failure. */
  applyD1Migrations(
    id: string,
    migrations: TenantMigration[],
  ): Promise<Result<{ applied: string[] }, MigrationFailure>>;
  /** The id of the KV namespace titled `title`, created if there is none. */
  ensureKV(title: string): Promise<{ id: string }>;
  /** The database's size in bytes, or null when the platform does not say cheaply. */
  d1Size(id: string): Promise<number | null>;
}

/** The platform name of a project's database or namespace for a binding: unique per (project, binding). */
export function resourceName(projectId: string, binding: string): string {
  return `shipyard-${projectId}-${binding.toLowerCase().replaceAll("_", "-")}`;
}

/** The ResourceHost of this deployment (same switch as `scriptHost`). */
export function resourceHost(env: Env): ResourceHost {
  const host = scriptHost(env);
  return host instanceof CloudflareScriptHost ? new CloudflareResources(host) : new LocalResources(env);
}
