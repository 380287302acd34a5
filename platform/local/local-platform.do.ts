import { DurableObject } from "cloudflare:workers";
import { type Result, err, ok } from "../../lib/result.ts";
import type {
  MigrationStep,
  ScriptBinding,
  ScriptHostErrorCode,
  ScriptInfo,
  ScriptModule,
  UploadRequest,
  UploadResult,
} from "../script-host.ts";
import { LOCAL_PLATFORM_MIGRATIONS } from "./local-platform.migrations.ts";
import { applySchema } from "../../durable/sql-schema.ts";

/** Module content is stored in chunks of this many characters (SQLite rows are capped at 2 MB). */
const CHUNK_CHARS = 512 * 1024;

export type PlatformError = { code: ScriptHostErrorCode; message: string; liveTag?: string | null };

/** What a dispatcher or host needs to run the current version. */
export interface CurrentVersion {
  script: string;
  versionId: string;
  /** Changes whenever the code or its bindings change: the Worker Loader's cache key. */
  versionKey: string;
  /** Bumped when the script is deleted: storage of an older generation is destroyed. */
  generation: number;
  /** Declared Durable Object classes and their storage namespace keys (an alarm finds its class here). */
  classes: Record<string, string>;
}

/** A version's code and bindings, in the shape the local runtime turns into Worker Loader input. */
export interface VersionCode {
  mainModule: string;
  modules: ScriptModule[];
  compatibilityDate: string;
  compatibilityFlags: string[];
  bindings: ScriptBinding[];
  /** Bindings uploaded with the version that its current settings no longer have. */
  removed: string[];
  /** Declared Durable Object classes and their storage namespace keys. */
  classes: Record<string, string>;
}

type VersionRow = {
  id: string;
  main_module: string;
  compatibility_date: string;
  compatibility_flags: string;
  uploaded_bindings: string;
  bindings: string;
};

/**
 * The local stand-in for the Workers for Platforms control plane, one object per tenant script.
 * It enforces the rules the real API enforces (the main module exists once; `old_tag` matches the
 * live migration tag; a Durable Object binding names a class some migration declared), keeps every
 * uploaded version, and hands the current one to the local runtime (platform/local/local-runtime.ts).
 */
export class LocalPlatform extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, LOCAL_PLATFORM_MIGRATIONS);
  }

  /** Uploads a version and makes it current, applying its migration atomically with it. */
  async upload(request: UploadRequest): Promise<Result<UploadResult, PlatformError>> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(request.compatibilityDate)) {
      return err({ code: "invalid_script", message: "compatibility_date must be YYYY-MM-DD" });
    }
    const names = request.modules.map((module) => module.name);
    if (new Set(names).size !== names.length) {
      return err({ code: "invalid_script", message: "module names must be unique" });
    }
    const main = request.modules.filter((module) => module.name === request.mainModule);
    if (main.length !== 1 || main[0]?.type !== "esm") {
      return err({
        code: "invalid_script",
        message: `main_module ${request.mainModule} must be exactly one uploaded ES module`,
      });
    }
    const liveTag = this.#get<string | null>("live_tag", null);
    let classes = this.#get<Record<string, string>>("classes", {});
    let tag = liveTag;
    if (request.migrations) {
      if ((request.migrations.old_tag ?? null) !== liveTag) {
        return err({
          code: "migration_tag_mismatch",
          message: `migrations.old_tag ${request.migrations.old_tag ?? "(none)"} does not match the live tag ${liveTag ?? "(none)"}`,
          liveTag,
        });
      }
      const applied = applySteps(classes, request.migrations.steps);
      if (!applied.ok) return applied;
      classes = applied.value;
      tag = request.migrations.new_tag;
    }
    const unknown = unknownClasses(request.bindings, classes);
    if (unknown) return err(unknown);

    const id = crypto.randomUUID();
    const seq = this.#sql.exec<{ n: number }>("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM versions").one().n;
    const bindings = JSON.stringify(request.bindings);
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec(
        `INSERT INTO versions (id, seq, created_at, main_module, compatibility_date, compatibility_flags, uploaded_bindings, bindings)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        id,
        seq,
        Date.now(),
        request.mainModule,
        request.compatibilityDate,
        JSON.stringify(request.compatibilityFlags ?? []),
        bindings,
        bindings,
      );
      request.modules.forEach((module, position) => {
        for (let offset = 0, chunk = 0; offset < Math.max(module.content.length, 1); offset += CHUNK_CHARS, chunk++) {
          this.#sql.exec(
            "INSERT INTO module_chunks (version_id, name, type, position, seq, content) VALUES (?, ?, ?, ?, ?, ?)",
            id,
            module.name,
            module.type,
            position,
            chunk,
            module.content.slice(offset, offset + CHUNK_CHARS),
          );
        }
      });
      this.#set("live_tag", tag);
      this.#set("classes", classes);
      this.#set("current_version", id);
      this.#set("settings_rev", this.#get("settings_rev", 0) + 1);
    });
    return ok({ versionId: id, migrationTag: tag });
  }

  /** The current version's tag and bindings, or null when the script does not exist. */
  async getScript(): Promise<ScriptInfo | null> {
    const row = this.#currentRow();
    if (!row) return null;
    return {
      scriptName: this.#script(),
      migrationTag: this.#get<string | null>("live_tag", null),
      bindings: parseBindings(row.bindings),
      versionId: row.id,
    };
  }

  /** Replaces the current version's bindings (the settings PATCH of the real API). */
  async setBindings(bindings: ScriptBinding[]): Promise<Result<null, PlatformError>> {
    const row = this.#currentRow();
    if (!row) return err({ code: "not_found", message: `script ${this.#script()} does not exist` });
    const unknown = unknownClasses(bindings, this.#get<Record<string, string>>("classes", {}));
    if (unknown) return err(unknown);
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("UPDATE versions SET bindings = ? WHERE id = ?", JSON.stringify(bindings), row.id);
      this.#set("settings_rev", this.#get("settings_rev", 0) + 1);
    });
    return ok(null);
  }

  /** Deletes the script, its versions and (by bumping the generation) its Durable Object storage. */
  async deleteScript(): Promise<void> {
    const generation = this.#get("generation", 0) + 1;
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM versions");
      this.#sql.exec("DELETE FROM module_chunks");
      this.#sql.exec("DELETE FROM script");
      this.#set("generation", generation);
    });
  }

  /** What to run now, or null when there is no script. */
  async current(): Promise<CurrentVersion | null> {
    const versionId = this.#get<string | null>("current_version", null);
    if (versionId === null) return null;
    const generation = this.#get("generation", 0);
    return {
      script: this.#script(),
      versionId,
      versionKey: `${this.#script()}:${generation}:${versionId}:${this.#get("settings_rev", 0)}`,
      generation,
      classes: this.#get<Record<string, string>>("classes", {}),
    };
  }

  /** The code and bindings of `versionId` (must be the current version: old ones are not runnable). */
  async code(versionId: string): Promise<VersionCode | null> {
    const row = this.#currentRow();
    if (!row || row.id !== versionId) return null;
    const chunks = this.#sql
      .exec<{ name: string; type: ScriptModule["type"]; content: string }>(
        "SELECT name, type, content FROM module_chunks WHERE version_id = ? ORDER BY position, seq",
        versionId,
      )
      .toArray();
    const modules: ScriptModule[] = [];
    for (const chunk of chunks) {
      const last = modules.at(-1);
      if (last && last.name === chunk.name) last.content += chunk.content;
      else modules.push({ name: chunk.name, type: chunk.type, content: chunk.content });
    }
    const bindings = parseBindings(row.bindings);
    const now = new Set(bindings.map((binding) => binding.name));
    return {
      mainModule: row.main_module,
      modules,
      compatibilityDate: row.compatibility_date,
      compatibilityFlags: parseStrings(row.compatibility_flags),
      bindings,
      removed: parseBindings(row.uploaded_bindings)
        .map((binding) => binding.name)
        .filter((name) => !now.has(name)),
      classes: this.#get<Record<string, string>>("classes", {}),
    };
  }

  #currentRow(): VersionRow | null {
    const id = this.#get<string | null>("current_version", null);
    if (id === null) return null;
    return (
      this.#sql
        .exec<VersionRow>(
          "SELECT id, main_module, compatibility_date, compatibility_flags, uploaded_bindings, bindings FROM versions WHERE id = ?",
          id,
        )
        .toArray()[0] ?? null
    );
  }

  #get<T>(key: string, fallback: T): T {
    const row = this.#sql.exec<{ value: string }>("SELECT value FROM script WHERE key = ?", key).toArray()[0];
    // Values are written only by #set, from a T of the same key.
    // oxlint-disable-next-line typescript/no-unsafe-type-assertion
    return row ? (JSON.parse(row.value) as T) : fallback;
  }

  #set(key: string, value: unknown): void {
    this.#sql.exec(
      "INSERT INTO script (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      JSON.stringify(value),
    );
  }

  #script(): string {
    return (this.ctx.id.name ?? "").replace(/^script:/, "");
  }
}

/** Applies migration steps to the declared classes (class → storage namespace key). */
function applySteps(
  classes: Record<string, string>,
  steps: MigrationStep[],
): Result<Record<string, string>, PlatformError> {
  const next = { ...classes };
  for (const step of steps) {
    for (const name of [...(step.new_sqlite_classes ?? []), ...(step.new_classes ?? [])]) {
      if (name in next) return err({ code: "invalid_script", message: `class ${name} already exists` });
      next[name] = `${name}.${crypto.randomUUID().slice(0, 8)}`;
    }
    for (const { from, to } of step.renamed_classes ?? []) {
      const namespace = next[from];
      if (namespace === undefined)
        return err({ code: "invalid_script", message: `cannot rename ${from}: no such class` });
      if (to in next) return err({ code: "invalid_script", message: `cannot rename ${from} to ${to}: ${to} exists` });
      delete next[from];
      next[to] = namespace;
    }
    for (const name of step.deleted_classes ?? []) {
      if (!(name in next)) return err({ code: "invalid_script", message: `cannot delete ${name}: no such class` });
      delete next[name];
    }
  }
  return ok(next);
}

function unknownClasses(bindings: ScriptBinding[], classes: Record<string, string>): PlatformError | null {
  for (const binding of bindings) {
    if (binding.type === "durable_object_namespace" && !(binding.class_name in classes)) {
      return {
        code: "invalid_script",
        message: `binding ${binding.name} refers to class ${binding.class_name}, which no migration declares`,
      };
    }
  }
  return null;
}

function parseBindings(json: string): ScriptBinding[] {
  // Written only by this class from validated ScriptBinding arrays.
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion
  return JSON.parse(json) as ScriptBinding[];
}

function parseStrings(json: string): string[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}
