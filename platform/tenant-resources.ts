/**
 * Resources Shipyard provisions for a tenant (issue 14: D1, KV, R2): the port the deploy workflow
 * talks to, its two implementations' factory, and the names resources get on the platform.
 *   - locally (platform/local/local-resources.ts): a `TenantDatabase` / `TenantKV` Durable Object
 *     per database / namespace, a key prefix of the one local R2 bucket per tenant bucket;
 *   - on Cloudflare (platform/cloudflare-resources.ts): created through the account API.
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
  /** The name of the R2 bucket `name` (its id: buckets are bound by name), created if there is none. */
  ensureR2(name: string): Promise<{ id: string }>;
  /** The database's size in bytes, or null when the platform does not say cheaply. */
  d1Size(id: string): Promise<number | null>;
  /** The bucket's stored bytes, or null when the platform does not say cheaply. */
  r2Size(id: string): Promise<number | null>;
  /** The database as SQL text (schema and rows, like `wrangler d1 export`). */
  exportD1(id: string): Promise<string>;
  /** Deletes the resource and its data; one already gone is not an error (a retried step). */
  deleteResource(kind: ResourceKind, id: string): Promise<void>;
}

export type ResourceKind = "d1" | "kv" | "r2";

/** R2's bucket names (wrangler's isValidR2BucketName; R2 error 10005 otherwise). */
export const R2_BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * The R2 bucket name of a project's binding: `resourceName` when that is a valid bucket name,
 * else (a long project id, a binding ending in `_`) its first 46 characters and 16 hex of a hash
 * of (project, binding), so it stays unique per (project, binding) and within 63 characters.
 */
export async function r2BucketName(projectId: string, binding: string): Promise<string> {
  const plain = resourceName(projectId, binding);
  if (R2_BUCKET_NAME.test(plain)) return plain;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${projectId}/${binding}`)),
  );
  const hash = Array.from(digest.slice(0, 8), (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${plain.slice(0, 46).replace(/-+$/, "")}-${hash}`;
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
