import { assertNever } from "../../lib/result.ts";
import { localDatabaseId, tenantDatabase } from "../d1-binding.ts";
import { localNamespaceId } from "../kv-binding.ts";
import { bucketObjects } from "../r2-binding.ts";
import type { ResourceHost, ResourceKind, TenantMigration } from "../tenant-resources.ts";

/**
 * Tenant resources on the local platform: a D1 database is a `TenantDatabase` Durable Object whose
 * id derives from the database name, so "create" is naturally idempotent (the same name is the
 * same object) and needs no bookkeeping beyond `tenant_resources`; a KV namespace likewise a
 * `TenantKV` object; an R2 bucket is a key prefix of the one local tenant bucket (`TENANT_R2`,
 * platform/r2-binding.ts), so it exists as soon as it is named.
 */
export class LocalResources implements ResourceHost {
  readonly #env: Env;

  constructor(env: Env) {
    this.#env = env;
  }

  async ensureD1(name: string): Promise<{ id: string }> {
    return { id: localDatabaseId(this.#env, name) };
  }

  async ensureKV(title: string): Promise<{ id: string }> {
    return { id: localNamespaceId(this.#env, title) };
  }

  async ensureR2(name: string): Promise<{ id: string }> {
    return { id: name };
  }

  async applyD1Migrations(id: string, migrations: TenantMigration[]) {
    return tenantDatabase(this.#env, id).applyMigrations(migrations);
  }

  async d1Size(id: string): Promise<number | null> {
    return tenantDatabase(this.#env, id).size();
  }

  /** The sum of the bucket's object sizes (one list call per 1000 objects). */
  async r2Size(id: string): Promise<number | null> {
    let bytes = 0;
    for await (const page of bucketObjects(this.#env.TENANT_R2, id)) {
      for (const object of page) bytes += object.size;
    }
    return bytes;
  }

  async exportD1(id: string): Promise<string> {
    return tenantDatabase(this.#env, id).dump();
  }

  async deleteResource(kind: ResourceKind, id: string): Promise<void> {
    switch (kind) {
      case "d1":
        await tenantDatabase(this.#env, id).destroy();
        return;
      case "kv":
        await this.#env.TENANT_KV.get(this.#env.TENANT_KV.idFromString(id)).destroy();
        return;
      case "r2":
        // Page by page; a retry after a partial run finds only what is left.
        for await (const page of bucketObjects(this.#env.TENANT_R2, id)) {
          if (page.length > 0) await this.#env.TENANT_R2.delete(page.map((object) => object.key));
        }
        return;
      default:
        assertNever(kind);
    }
  }
}
