/**
 * The ScriptHost port: where tenant Workers run. Two implementations:
 *   - `CloudflareScriptHost` (platform/cloudflare-script-host.ts): Workers for Platforms REST API.
 *   - `LocalScriptHost` (platform/local/local-script-host.ts): stores versions and runs them for real on
 *     local workerd with the Worker Loader binding and Durable Object facets.
 * The deploy and enforcement workflows only ever talk to this interface.
 */

/** A module as the deploy manifest carries it: text for code/text, base64 for data/wasm. */
export interface ScriptModule {
  name: string;
  type: "esm" | "cjs" | "text" | "data" | "wasm" | "sourcemap";
  content: string;
}

export type ScriptBinding =
  | { type: "durable_object_namespace"; name: string; class_name: string }
  | { type: "plain_text"; name: string; text: string }
  /** A var of any other JSON type (wrangler's `vars` with a number, boolean, object or array). */
  | { type: "json"; name: string; json: unknown }
  /**
   * A secret. `text` is present on upload; Cloudflare never returns it, so a binding read back
   * from the platform may lack it (and is then re-sent as `inherit`, keeping the stored value).
   */
  | { type: "secret_text"; name: string; text?: string }
  /** The static assets binding (`env.ASSETS.fetch`); the files come with the upload's `assets`. */
  | { type: "assets"; name: string }
  | { type: "analytics_engine"; name: string; dataset: string }
  /** A D1 database Shipyard provisioned for the project (platform/tenant-resources.ts), bound by id. */
  | { type: "d1"; name: string; id: string }
  /** A KV namespace Shipyard provisioned for the project, bound by id. */
  | { type: "kv_namespace"; name: string; namespace_id: string };

/** The static assets of an upload: the files and how they are served. */
export interface UploadAssets {
  files: { path: string; hash: string; size: number; content_type?: string; content: string }[];
  config: {
    html_handling?: "auto-trailing-slash" | "force-trailing-slash" | "drop-trailing-slash" | "none";
    not_found_handling?: "single-page-application" | "404-page" | "none";
    run_worker_first?: boolean | string[];
    /** `_redirects` / `_headers` file text, applied by Cloudflare (the local platform does not yet). */
    _redirects?: string;
    _headers?: string;
  };
}

/** One step of a Durable Object migration, in wrangler's vocabulary. */
export interface MigrationStep {
  new_sqlite_classes?: string[];
  new_classes?: string[];
  renamed_classes?: { from: string; to: string }[];
  deleted_classes?: string[];
  /** Takes class `from` of script `from_script` (same namespace) over as `to`, with its objects. */
  transferred_classes?: { from: string; from_script: string; to: string }[];
}

/** The `migrations` field of an upload: move the live tag from `old_tag` to `new_tag` by `steps`. */
export interface ScriptMigrations {
  /** The tag the platform must currently have (absent for a first deploy). */
  old_tag?: string;
  new_tag: string;
  steps: MigrationStep[];
}

/**
 * What one invocation of a tenant's code may spend: CPU time in ms and subrequests (locally the
 * gateway calls a tenant makes to its Durable Objects and alarms count too). Sent as Worker Loader
 * `limits` locally and as the upload's `limits` metadata on Workers for Platforms.
 */
export const TENANT_LIMITS = { cpuMs: 1_000, subRequests: 1_000 } as const;

export interface UploadRequest {
  scriptName: string;
  /** Name of the main module; it must be in `modules` exactly once. */
  mainModule: string;
  modules: ScriptModule[];
  bindings: ScriptBinding[];
  compatibilityDate: string;
  compatibilityFlags?: string[];
  migrations?: ScriptMigrations;
  /** Static assets served in front of (or behind, `run_worker_first`) the Worker. */
  assets?: UploadAssets;
}

export interface UploadResult {
  /** The platform's id for the uploaded version. */
  versionId: string;
  /** The live migration tag after the upload (unchanged when no migration was sent). */
  migrationTag: string | null;
}

export interface ScriptInfo {
  scriptName: string;
  migrationTag: string | null;
  bindings: ScriptBinding[];
  versionId: string;
}

export type ScriptHostErrorCode =
  /** `migrations.old_tag` does not match the live tag: re-read it and recompute. */
  | "migration_tag_mismatch"
  /** The platform refused the script (bad modules, a binding to a class without migration…): never retry as is. */
  | "invalid_script"
  | "not_found"
  /** 429 / 5xx / network: retry later. */
  | "unavailable";

/** Errors of every ScriptHost, with a code the workflows switch on. */
export class ScriptHostError extends Error {
  override name = "ScriptHostError";
  constructor(
    readonly code: ScriptHostErrorCode,
    message: string,
    readonly details?: { liveTag?: string | null; status?: number },
  ) {
    super(message);
  }
}

export interface ScriptHost {
  /** Uploads a new version and makes it current, applying `migrations` atomically with it. */
  upload(request: UploadRequest): Promise<UploadResult>;
  /** The current version's tag and bindings, or null if there is no such script. */
  getScript(scriptName: string): Promise<ScriptInfo | null>;
  /** Replaces the current version's bindings (settings PATCH); the code stays. */
  setBindings(scriptName: string, bindings: ScriptBinding[]): Promise<void>;
  /** Deletes the script and, with it, its Durable Object storage. Deleting a missing script is a no-op. */
  deleteScript(scriptName: string): Promise<void>;
}
