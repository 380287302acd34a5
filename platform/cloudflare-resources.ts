/**
 * Tenant D1 databases, KV namespaces and R2 buckets on Cloudflare: the ResourceHost over the account API, through
 * CloudflareScriptHost's transport (token, p-retry with Retry-After and backoff, error mapping).
 *   GET  /accounts/{account}/d1/database?name=<name>   look up by name (before any create)
 *   POST /accounts/{account}/d1/database               create {name}; a taken name is code 7502
 *   GET  /accounts/{account}/d1/database/{uuid}        details: file_size
 *   POST /accounts/{account}/d1/database/{uuid}/query  {sql, params}
 *   GET  /accounts/{account}/storage/kv/namespaces?page=&per_page=100   look up by title (no filter: paged)
 *   POST /accounts/{account}/storage/kv/namespaces {title}          create; a taken title is code 10014
 *   DELETE /accounts/{account}/d1/database/{uuid}, /storage/kv/namespaces/{id}   delete (404: already gone)
 *   POST /accounts/{account}/d1/database/{uuid}/export {output_format: "polling", current_bookmark?}
 *        polled until status "complete" with result.signed_url (the SQL, fetched without the token)
 *   GET  /accounts/{account}/r2/buckets/{name}          look up (404 code 10006: none)
 *   POST /accounts/{account}/r2/buckets {name}          create; a taken name is 409 code 10073
 *   GET  /accounts/{account}/r2/buckets/{name}/objects?per_page=&start_after=   list (size, emptying)
 *   DELETE /accounts/{account}/r2/buckets/{name}/objects/{key}, /r2/buckets/{name}   empty, then delete
 * (R2 error codes: developers.cloudflare.com/r2/api/error-codes; 10008 is a bucket not empty.)
 * Migrations are recorded like `wrangler d1 migrations apply` does: a `d1_migrations` table in the
 * database, and each migration sent as one query with its bookkeeping INSERT (one transaction).
 */
import { z } from "zod";
import type { CloudflareScriptHost } from "./cloudflare-script-host.ts";
import pRetry, { AbortError } from "p-retry";
import { ScriptHostError } from "./script-host.ts";
import type { MigrationFailure, ResourceHost, ResourceKind, TenantMigration } from "./tenant-resources.ts";
import { assertNever, type Result } from "../lib/result.ts";

const DatabaseSchema = z.object({ uuid: z.string(), name: z.string(), file_size: z.number().optional() });
const QueryResultSchema = z.array(z.object({ results: z.array(z.record(z.string(), z.unknown())).default([]) }));

const NamespaceSchema = z.object({ id: z.string(), title: z.string() });
const KV_PAGE_SIZE = 100;
/** An account has at most a few thousand namespaces (Cloudflare's limit is 1000 by default). */
const KV_MAX_PAGES = 50;

const BucketSchema = z.object({ name: z.string() });
const ObjectSchema = z.object({ key: z.string(), size: z.coerce.number().default(0) });
const R2_PAGE_SIZE = 1000;
/** Past this many objects a bucket's size is not cheap to say (null). */
const R2_SIZE_MAX_PAGES = 10;

const ExportSchema = z.object({
  at_bookmark: z.string().optional(),
  status: z.string().optional(),
  error: z.string().optional(),
  result: z.object({ filename: z.string().optional(), signed_url: z.string() }).optional(),
});
/** An export is polled once a second, for at most this long (a step's retry starts it again). */
const EXPORT_POLLS = 120;
const EXPORT_POLL_MS = 1_000;

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

  /** Looks the bucket up by name first (404 code 10006 when there is none), so a retried step finds it. */
  async ensureR2(name: string): Promise<{ id: string }> {
    return this.#ensure(
      () => this.#findR2(name),
      async () =>
        BucketSchema.parse(
          await this.#api.accountCall("r2_create", "POST", "/r2/buckets", name, JSON.stringify({ name })),
        ).name,
    );
  }

  async #findR2(name: string): Promise<string | undefined> {
    try {
      const bucket = BucketSchema.parse(
        await this.#api.accountCall("r2_get", "GET", `/r2/buckets/${encodeURIComponent(name)}`, name),
      );
      return bucket.name;
    } catch (error) {
      if (error instanceof ScriptHostError && error.code === "not_found") return undefined;
      throw error;
    }
  }

  /** One page of a bucket's objects after `startAfter` (the API's own `start_after`). */
  async #objects(bucket: string, startAfter: string | undefined): Promise<{ key: string; size: number }[]> {
    const query = new URLSearchParams({ per_page: String(R2_PAGE_SIZE) });
    if (startAfter !== undefined) query.set("start_after", startAfter);
    return z
      .array(ObjectSchema)
      .parse(
        await this.#api.accountCall(
          "r2_objects",
          "GET",
          `/r2/buckets/${encodeURIComponent(bucket)}/objects?${query.toString()}`,
          bucket,
        ),
      );
  }

  async r2Size(id: string): Promise<number | null> {
    let bytes = 0;
    let after: string | undefined;
    for (let page = 0; page < R2_SIZE_MAX_PAGES; page++) {
      const objects = await this.#objects(id, after);
      for (const object of objects) bytes += object.size;
      if (objects.length < R2_PAGE_SIZE) return bytes;
      after = objects.at(-1)?.key;
    }
    return null;
  }

  /**
   * Exports through D1's export API: started with `output_format: "polling"`, polled with the
   * bookmark it answers until `status` is "complete", then the SQL read from the signed URL.
   */
  async exportD1(id: string): Promise<string> {
    const path = `/d1/database/${encodeURIComponent(id)}/export`;
    let bookmark: string | undefined;
    for (let poll = 0; poll < EXPORT_POLLS; poll++) {
      const body = { output_format: "polling", ...(bookmark === undefined ? {} : { current_bookmark: bookmark }) };
      const state = ExportSchema.parse(
        await this.#api.accountCall("d1_export", "POST", path, id, JSON.stringify(body)),
      );
      if (state.status === "error") {
        throw new ScriptHostError("invalid_script", `D1 export of ${id} failed: ${state.error ?? "no reason given"}`);
      }
      if (state.status === "complete" && state.result !== undefined) return this.#download(id, state.result.signed_url);
      bookmark = state.at_bookmark ?? bookmark;
      await new Promise((resolve) => setTimeout(resolve, EXPORT_POLL_MS));
    }
    throw new ScriptHostError("unavailable", `D1 export of ${id} did not complete in ${EXPORT_POLLS} polls`);
  }

  /** The signed URL needs no token (it must not get one: it is not the API). */
  async #download(id: string, url: string): Promise<string> {
    return pRetry(
      async () => {
        const response = await fetch(url);
        if (response.status >= 500 || response.status === 429) throw new Error(`HTTP ${response.status}`);
        if (!response.ok) {
          throw new AbortError(
            new ScriptHostError("unavailable", `D1 export of ${id}: the signed URL answered ${response.status}`),
          );
        }
        return response.text();
      },
      { retries: 4, minTimeout: 200 },
    );
  }

  async deleteResource(kind: ResourceKind, id: string): Promise<void> {
    const remove = async (op: string, path: string) => {
      try {
        await this.#api.accountCall(op, "DELETE", path, id);
      } catch (error) {
        if (!(error instanceof ScriptHostError && error.code === "not_found")) throw error;
      }
    };
    switch (kind) {
      case "d1":
        return remove("d1_delete", `/d1/database/${encodeURIComponent(id)}`);
      case "kv":
        return remove("kv_delete", `/storage/kv/namespaces/${encodeURIComponent(id)}`);
      case "r2": {
        // A bucket must be empty to be deleted (10008): its objects go first, page by page.
        if ((await this.#findR2(id)) === undefined) return;
        for (;;) {
          const objects = await this.#objects(id, undefined);
          for (const object of objects) {
            await remove(
              "r2_object_delete",
              `/r2/buckets/${encodeURIComponent(id)}/objects/${object.key.split("/").map(encodeURIComponent).join("/")}`,
            );
          }
          if (objects.length < R2_PAGE_SIZE) break;
        }
        return remove("r2_delete", `/r2/buckets/${encodeURIComponent(id)}`);
      }
      default:
        return assertNever(kind);
    }
  }

  /**
   * Look up, else create. A create refused as taken (D1 7502, KV 10014, R2 10073: made meanwhile by a
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
