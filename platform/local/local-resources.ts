import { localDatabaseId, tenantDatabase } from "../d1-binding.ts";
import { localNamespaceId } from "../kv-binding.ts";
import type { ResourceHost, TenantMigration } from "../tenant-resources.ts";

/**
 * Tenant resources on the local platform: a D1 database is a `TenantDatabase` Durable Object whose
 * id derives from the database name, so "create" is naturally idempotent (the same name is the
 * same object) and needs no bookkeeping beyond `tenant_resources`.
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

  async applyD1Migrations(id: string, migrations: TenantMigration[]) {
    return tenantDatabase(this.#env, id).applyMigrations(migrations);
  }

  async d1Size(id: string): Promise<number | null> {
    return tenantDatabase(this.#env, id).size();
  }
}
