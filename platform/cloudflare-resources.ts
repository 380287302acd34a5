/**
 * Tenant D1 databases on Cloudflare: the ResourceHost over the account's D1 API, through
 * CloudflareScriptHost's transport (token, p-retry with Retry-After and backoff, error mapping).
 *   GET  /accounts/{account}/d1/database?name=<name>   look up by name (before any create)
 *   POST /accounts/{account}/d1/database               create {name}; a taken name is code 7502
 *   GET  /accounts/{account}/d1/database/{uuid}        details: file_size
 *   POST /accounts/{account}/d1/database/{uuid}/query  {sql, params}
 *   GET  /accounts/{account}/storage/kv/namespaces?page=&per_page=100   look up by title (no filter: paged)
 *   POST /accounts/{account}/storage/kv/namespaces {title}          create; a taken title is code 10014
 * Migrations are recorded like `wrangler d1 migrations apply` does: a `d1_migrations` table in the
 * database, and each migration sent as one query with its bookkeeping INSERT (one transaction).
 */
import { z } from "zod";
import type { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import { ScriptHostError } from "./script-host.ts";
import type { MigrationFailure, ResourceHost, TenantMigration } from "./tenant-resources.ts";
import type { Result } from "../lib/result.ts";

const DatabaseSchema = z.object({ uuid: z.string(), name: z.string(), file_size: z.number().optional() });
const QueryResultSchema = z.array(z.object({ results: z.array(z.record(z.string(), z.unknown())).default([]) }));

const NamespaceSchema = z.object({ id: z.string(), title: z.string() });
const KV_PAGE_SIZE = 100;
/** An account has at most a few thousand namespaces (Cloudflare's limit is 1000 by default). */
const KV_MAX_PAGES = 50;

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS d1_migrations(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT UNIQUE,
  applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)`;

export class CloudflareResources implements ResourceHost {
  readonly #api: CloudflareScriptHost;

  constructor(api: CloudflareScriptHost) {
    this.#api = api;
  }

  /** Looks the name up first, so a retried step finds the database an earlier attempt created. */
  async ensureD1(name: string): Promise<{ id: string }> {
    return this.#ensure(
      () => this.#find(name),
      async () =>
        DatabaseSchema.parse(
          await this.#api.accountCall("d1_create", "POST", "/d1/database", name, JSON.stringify({ name })),
        ).uuid,
    );
  }

  /** Looks the title up first (every page), so a retried step finds the namespace an earlier attempt created. */
  async ensureKV(title: string): Promise<{ id: string }> {
    return this.#ensure(
      () => this.#findKV(title),
      async () =>
        NamespaceSchema.parse(
          await this.#api.accountCall("kv_create", "POST", "/storage/kv/namespaces", title, JSON.stringify({ title })),
        ).id,
    );
  }

  /**
   * Look up, else create. A create refused as taken (D1 7502, KV 10014: made meanwhile by a
   * concurrent or timed-out earlier attempt) is answered by looking up again: that one is ours.
   */
  async #ensure(find: () => Promise<string | undefined>, create: () => Promise<string>): Promise<{ id: string }> {
    const found = await find();
    if (found !== undefined) return { id: found };
    try {
      return { id: await create() };
    } catch (error) {
      if (!(error instanceof ScriptHostError) || error.code !== "invalid_script") throw error;
      const raced = await find();
      if (raced === undefined) throw error;
      return { id: raced };
    }
  }

  async #findKV(title: string): Promise<string | undefined> {
    for (let page = 1; page <= KV_MAX_PAGES; page++) {
      const list = z
        .array(NamespaceSchema)
        .parse(
          await this.#api.accountCall(
            "kv_list",
            "GET",
            `/storage/kv/namespaces?page=${page}&per_page=${KV_PAGE_SIZE}`,
            title,
          ),
        );
      const found = list.find((namespace) => namespace.title === title);
      if (found !== undefined) return found.id;
      if (list.length < KV_PAGE_SIZE) return undefined;
    }
    throw new ScriptHostError(
      "unavailable",
      `more than ${KV_MAX_PAGES * KV_PAGE_SIZE} KV namespaces: cannot look ${title} up`,
    );
  }

  async applyD1Migrations(
    id: string,
    migrations: TenantMigration[],
  ): Promise<Result<{ applied: string[] }, MigrationFailure>> {
    await this.#query(id, MIGRATIONS_TABLE);
    const done = new Set((await this.#query(id, "SELECT name FROM d1_migrations")).map((row) => String(row["name"])));
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      // Names are [A-Za-z0-9_.-] (schemas/deploy.schema.ts), so the literal needs no escaping.
      const sql = `${migration.sql.trimEnd().replace(/;?$/, ";")}\nINSERT INTO d1_migrations (name) VALUES ('${migration.name}');`;
      try {
        await this.#query(id, sql);
      } catch (error) {
        if (error instanceof ScriptHostError && error.code === "invalid_script") {
          return { ok: false, error: { name: migration.name, message: error.message } };
        }
        throw error;
      }
      applied.push(migration.name);
    }
    return { ok: true, value: { applied } };
  }

  async d1Size(id: string): Promise<number | null> {
    const details = DatabaseSchema.parse(
      await this.#api.accountCall("d1_details", "GET", `/d1/database/${encodeURIComponent(id)}`, id),
    );
    return details.file_size ?? null;
  }

  async #find(name: string): Promise<string | undefined> {
    const list = z
      .array(DatabaseSchema)
      .parse(await this.#api.accountCall("d1_list", "GET", `/d1/database?name=${encodeURIComponent(name)}`, name));
    return list.find((database) => database.name === name)?.uuid;
  }

  async #query(id: string, sql: string): Promise<Record<string, unknown>[]> {
    const result = QueryResultSchema.parse(
      await this.#api.accountCall(
        "d1_query",
        "POST",
        `/d1/database/${encodeURIComponent(id)}/query`,
        id,
        JSON.stringify({ sql, params: [] }),
      ),
    );
    return result.flatMap((statement) => statement.results);
  }
}
