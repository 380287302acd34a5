/**
 * `CloudflareScriptHost`: the ScriptHost port over the Workers for Platforms REST API.
 *
 * Endpoints (account-scoped, under a dispatch namespace):
 *   PUT    /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}           upload (multipart)
 *   GET    /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}           details: `script.migration_tag`, `script.etag`
 *   GET    /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}/settings  bindings
 *   PATCH  /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}/settings  bindings (multipart `settings` part)
 *   DELETE /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}?force=true
 *   POST   /accounts/{account}/workers/dispatch/namespaces/{ns}/scripts/{name}/assets-upload-session
 *   POST   /accounts/{account}/workers/assets/upload?base64=true                            (session JWT)
 * Static assets (docs: workers/static-assets/direct-upload): the session takes the manifest
 * (`/path` → hash, size) and answers a JWT and buckets of the hashes Cloudflare lacks; each bucket
 * is posted with that JWT; the last answers the completion token the script upload carries in
 * `metadata.assets.jwt`, next to the serving config.
 * The settings object carries no migration tag, which is why `getScript` reads the details too
 * (as wrangler does for `--dispatch-namespace` deploys).
 *
 * Transport policy: 429, 5xx, timeouts and network errors are retried with p-retry, waiting at
 * least `Retry-After` when the API sends it and exponential backoff with jitter otherwise, for a
 * bounded number of attempts; every other 4xx is final. Errors leave as `ScriptHostError`.
 */
import pRetry, { AbortError } from "p-retry";
import { z } from "zod";
import { backoffMs } from "../lib/backoff.ts";
import { describeError, log } from "../lib/log.ts";
import {
  type ScriptBinding,
  type ScriptHost,
  ScriptHostError,
  type ScriptInfo,
  TENANT_LIMITS,
  type ScriptModule,
  type UploadAssets,
  type UploadRequest,
  type UploadResult,
} from "./script-host.ts";

export const DEFAULT_CF_API_BASE_URL = "https://api.cloudflare.com/client/v4";

export interface RetryPolicy {
  /** Total attempts per API call, the first included (default 5). */
  attempts?: number;
  /** Backoff base: attempt n waits about base·2^(n-1), jittered (default 500 ms). */
  baseDelayMs?: number;
  /**
   * Longest wait between two attempts (default 30 s). A `Retry-After` beyond it is not waited
   * out here: the call fails as `unavailable` at once and the workflow step retries later.
   */
  maxDelayMs?: number;
  /** Per-attempt timeout (default 60 s: uploads of a few MiB through a slow path). */
  timeoutMs?: number;
}

export interface CloudflareScriptHostOptions {
  accountId: string;
  /** The Workers for Platforms dispatch namespace the tenant Workers live in. */
  namespace: string;
  /** API token with "Workers Scripts: Edit" on the account; sent as `Authorization: Bearer`. */
  apiToken: string;
  baseUrl?: string;
  fetch?: typeof fetch;
  retries?: RetryPolicy;
  /**
   * Shipyard's own Worker (wrangler.toml `name`, the `SHIPYARD_WORKER_NAME` var): every upload
   * names it as the script's tail consumer, so the runtime's trace items of every invocation reach
   * its `tail` handler (platform/tail-usage.ts). Default `shipyard`.
   */
  tailConsumer?: string;
}

/** wrangler.toml's `name`: the Worker uploads name as tail consumer unless told otherwise. */
export const DEFAULT_TAIL_CONSUMER = "shipyard";

/** The content type the upload API expects for each module type (wrangler's mapping). */
const MODULE_CONTENT_TYPES = {
  esm: "application/javascript+module",
  cjs: "application/javascript",
  text: "text/plain",
  data: "application/octet-stream",
  wasm: "application/wasm",
  sourcemap: "application/source-map",
} as const satisfies Record<ScriptModule["type"], string>;

/**
 * Real API code for a migration tag precondition failure, in either wording: older "Migration tag
 * precondition failed; current tag is <tag>", newer "Actor migration tag precondition failed, got
 * tag '<sent>' when expected tag is '<live>'" (test/fake-cloudflare-api/server.ts cites both).
 */
const CF_MIGRATION_TAG_PRECONDITION = 10079;
/** "This Worker does not exist on your account" / workers.api.error.script_not_found. */
const CF_SCRIPT_NOT_FOUND = 10007;
/** "Could not route to /client/v4/accounts/<id>/…, perhaps your object identifier is invalid?" */
const CF_COULD_NOT_ROUTE = 7003;

/**
 * What a refused upload's codes mean, for a deploy error that names the cause (sources: the fake
 * API's rules, test/fake-cloudflare-api/script-rules.ts and server.ts).
 */
const REFUSAL_CAUSES: Record<number, string> = {
  10021:
    "the version does not start on Cloudflare (a syntax error, a module it imports but the upload lacks, an unknown compatibility flag, …)",
  10027: "the upload is over the Worker size limit",
  10061: "a Durable Object binding names a class no migration created",
  10064:
    "the version no longer exports a Durable Object class whose objects exist: export the class again, or delete it with a deleted_classes migration (which destroys its objects)",
  10070: "a migration creates a Durable Object class the code does not export",
  10074: "a new-class migration names a class that already exists",
};

// --- API response shapes (only the fields we use; zod drops the rest) -----------------------

const CfMessageSchema = z.looseObject({ code: z.number(), message: z.string() });

const EnvelopeSchema = z.object({
  success: z.boolean(),
  errors: z.array(CfMessageSchema).default([]),
  result: z.unknown(),
});
type Envelope = z.infer<typeof EnvelopeSchema>;
type CfMessage = z.infer<typeof CfMessageSchema>;

const UploadResultSchema = z.object({
  etag: z.string().optional(),
  /** Despite the name, the id of the version this upload created (wrangler reads it so). */
  deployment_id: z.string().nullish(),
  migration_tag: z.string().nullish(),
  modified_on: z.string().optional(),
});

const ScriptDetailsSchema = z.object({
  modified_on: z.string().optional(),
  script: z.object({
    etag: z.string().optional(),
    migration_tag: z.string().nullish(),
    modified_on: z.string().optional(),
  }),
});

const ScriptBindingSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("durable_object_namespace"), name: z.string(), class_name: z.string() }),
  z.object({ type: z.literal("plain_text"), name: z.string(), text: z.string() }),
  z.object({ type: z.literal("json"), name: z.string(), json: z.unknown() }),
  // Cloudflare never returns a secret's text.
  z.object({ type: z.literal("secret_text"), name: z.string(), text: z.string().optional() }),
  z.object({ type: z.literal("assets"), name: z.string() }),
  z.object({ type: z.literal("analytics_engine"), name: z.string(), dataset: z.string() }),
  z.object({ type: z.literal("d1"), name: z.string(), id: z.string() }),
  z.object({ type: z.literal("kv_namespace"), name: z.string(), namespace_id: z.string() }),
]);

const AssetSessionSchema = z.object({
  jwt: z.string().min(1),
  buckets: z.array(z.array(z.string())).default([]),
});
const AssetBucketSchema = z.object({ jwt: z.string().nullish() });

const SettingsSchema = z.object({
  bindings: z.array(z.looseObject({ type: z.string(), name: z.string() })).default([]),
});

/** A failure worth another attempt: 429, 5xx, timeout or network error. */
class TransientFailure extends Error {
  override name = "TransientFailure";
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

interface CallSpec {
  /** Operation name for logs and messages, e.g. `upload`. */
  op: string;
  method: "GET" | "PUT" | "PATCH" | "DELETE" | "POST";
  scriptName: string;
  suffix?: string;
  /** A multipart form, or JSON text. */
  body?: FormData | string;
  /** An account-level path instead of the script's (e.g. `/workers/assets/upload?base64=true`). */
  accountPath?: string;
  /** A bearer token other than the API token (an assets upload session's JWT). */
  token?: string;
}

/** Workers for Platforms implementation of {@link ScriptHost}. */
export class CloudflareScriptHost implements ScriptHost {
  readonly #accountId: string;
  readonly #namespace: string;
  readonly #apiToken: string;
  readonly #baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #timeoutMs: number;
  readonly #tailConsumer: string;

  constructor(options: CloudflareScriptHostOptions) {
    this.#accountId = options.accountId;
    this.#namespace = options.namespace;
    this.#apiToken = options.apiToken;
    this.#baseUrl = (options.baseUrl ?? DEFAULT_CF_API_BASE_URL).replace(/\/+$/, "");
    // Wrapped, not stored bare: workerd's fetch throws "Illegal invocation" when called with
    // another `this` (here it would be the host instance).
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#attempts = Math.max(1, Math.floor(options.retries?.attempts ?? 5));
    this.#baseDelayMs = options.retries?.baseDelayMs ?? 500;
    this.#maxDelayMs = options.retries?.maxDelayMs ?? 30_000;
    this.#timeoutMs = options.retries?.timeoutMs ?? 60_000;
    this.#tailConsumer = options.tailConsumer ?? DEFAULT_TAIL_CONSUMER;
  }

  /**
   * An account-level API call (e.g. `/d1/database`) with this client's token, retries and error
   * mapping; answers the envelope's `result`. `subject` names what the call is about in logs and
   * errors (a database name, where the script calls name the script).
   */
  async accountCall(
    op: string,
    method: CallSpec["method"],
    accountPath: string,
    subject: string,
    body?: string,
  ): Promise<unknown> {
    const spec: CallSpec = { op, method, scriptName: subject, accountPath, ...(body === undefined ? {} : { body }) };
    return (await this.#call(spec)).result;
  }

  /**
   * Uploads a new version (PUT, multipart) and makes it current; `migrations` apply atomically
   * with it. `versionId` is the script's etag (a hash of its content): the same id from
   * `getScript` means this code is live, which is what a replayed workflow step needs to check.
   *
   * A `migration_tag_mismatch` whose `details.liveTag` equals `migrations.new_tag` usually means
   * an earlier attempt of this very upload landed (a timeout after the API applied it): re-read
   * with `getScript` before treating it as a conflict.
   */
  async upload(request: UploadRequest): Promise<UploadResult> {
    const assetsJwt =
      request.assets === undefined ? undefined : await this.#uploadAssets(request.scriptName, request.assets);
    const form = buildUploadForm(request, assetsJwt, this.#tailConsumer);
    const envelope = await this.#call({ op: "upload", method: "PUT", scriptName: request.scriptName, body: form });
    const result = this.#parse("upload", UploadResultSchema, envelope.result);
    // The answer is the script object, whose `migration_tag` is absent until a migration set one:
    // read absence the same way getScript does (no tag), falling back to what we just sent.
    const migrationTag = result.migration_tag ?? request.migrations?.new_tag ?? null;
    const versionId = result.etag ?? result.deployment_id ?? result.modified_on ?? "unknown";
    log.info("cf_script_uploaded", {
      script: request.scriptName,
      namespace: this.#namespace,
      versionId,
      cfVersionId: result.deployment_id ?? null,
      migrationTag,
      modules: request.modules.length,
    });
    return { versionId, migrationTag };
  }

  /**
   * Uploads a version's static assets through an upload session and returns the completion token.
   * Files Cloudflare already holds (by hash) are not in any bucket and are not sent again.
   */
  async #uploadAssets(scriptName: string, assets: UploadAssets): Promise<string> {
    const manifest = Object.fromEntries(assets.files.map((file) => [file.path, { hash: file.hash, size: file.size }]));
    const session = this.#parse(
      "assets_upload_session",
      AssetSessionSchema,
      (
        await this.#call({
          op: "assets_upload_session",
          method: "POST",
          scriptName,
          suffix: "/assets-upload-session",
          body: JSON.stringify({ manifest }),
        })
      ).result,
    );
    const byHash = new Map(assets.files.map((file) => [file.hash, file]));
    let completion = session.buckets.length === 0 ? session.jwt : undefined;
    for (const [index, bucket] of session.buckets.entries()) {
      const form = new FormData();
      for (const hash of bucket) {
        const file = byHash.get(hash);
        if (file === undefined) {
          throw new ScriptHostError(
            "unavailable",
            `the assets upload session asked for ${hash}, which this upload does not have`,
          );
        }
        form.append(hash, new File([file.content], hash, { type: file.content_type ?? "application/octet-stream" }));
      }
      const answer = this.#parse(
        "assets_upload",
        AssetBucketSchema,
        (
          await this.#call({
            op: "assets_upload",
            method: "POST",
            scriptName,
            accountPath: "/workers/assets/upload?base64=true",
            token: session.jwt,
            body: form,
          })
        ).result,
      );
      if (answer.jwt) completion = answer.jwt;
      log.info("cf_assets_bucket_uploaded", {
        script: scriptName,
        bucket: index + 1,
        of: session.buckets.length,
        files: bucket.length,
      });
    }
    if (completion === undefined) {
      throw new ScriptHostError("unavailable", `the assets upload of ${scriptName} ended without a completion token`);
    }
    return completion;
  }

  /** The live migration tag (script details) and bindings (settings), or null if there is no such script. */
  async getScript(scriptName: string): Promise<ScriptInfo | null> {
    try {
      const details = this.#parse(
        "get_script",
        ScriptDetailsSchema,
        (await this.#call({ op: "get_script", method: "GET", scriptName })).result,
      );
      const settings = this.#parse(
        "get_settings",
        SettingsSchema,
        (await this.#call({ op: "get_settings", method: "GET", scriptName, suffix: "/settings" })).result,
      );
      return {
        scriptName,
        migrationTag: details.script.migration_tag ?? null,
        bindings: this.#knownBindings(scriptName, settings.bindings),
        versionId: details.script.etag ?? details.script.modified_on ?? details.modified_on ?? "unknown",
      };
    } catch (error) {
      if (error instanceof ScriptHostError && error.code === "not_found") return null;
      throw error;
    }
  }

  /**
   * Replaces the live version's bindings of the kinds this port models with `bindings`, in a
   * settings PATCH (a new version with the same code), and keeps every other binding as it is: a
   * binding of a kind the port does not model (set out of band: KV, R2, a service …) is sent as
   * `{"type": "inherit"}`, and so is a secret read back without its value (the API never returns
   * one), so the new version keeps the old value. Enforcement removing a Durable Object binding
   * therefore changes that binding only.
   */
  async setBindings(scriptName: string, bindings: ScriptBinding[]): Promise<void> {
    const live = this.#parse(
      "get_settings",
      SettingsSchema,
      (await this.#call({ op: "get_settings", method: "GET", scriptName, suffix: "/settings" })).result,
    );
    const named = new Set(bindings.map((binding) => binding.name));
    const kept = live.bindings
      .filter((binding) => !named.has(binding.name) && !ScriptBindingSchema.safeParse(binding).success)
      .map((binding) => ({ type: "inherit", name: binding.name }));
    const sent = [
      ...bindings.map((binding) =>
        binding.type === "secret_text" && binding.text === undefined
          ? { type: "inherit", name: binding.name }
          : binding,
      ),
      ...kept,
    ];
    const form = new FormData();
    form.append("settings", new Blob([JSON.stringify({ bindings: sent })], { type: "application/json" }));
    await this.#call({ op: "set_bindings", method: "PATCH", scriptName, suffix: "/settings", body: form });
    log.info("cf_script_bindings_set", {
      script: scriptName,
      namespace: this.#namespace,
      bindings: bindings.map((binding) => `${binding.type}:${binding.name}`),
      kept: kept.map((binding) => binding.name),
    });
  }

  /**
   * Deletes the script with `force=true`: without it the API refuses scripts that own Durable
   * Object namespaces, and the port's contract is that their storage goes with the script.
   */
  async deleteScript(scriptName: string): Promise<void> {
    try {
      await this.#call({ op: "delete_script", method: "DELETE", scriptName, suffix: "?force=true" });
      log.info("cf_script_deleted", { script: scriptName, namespace: this.#namespace });
    } catch (error) {
      if (error instanceof ScriptHostError && error.code === "not_found") return;
      throw error;
    }
  }

  /** One API call with retries; resolves to a successful envelope or throws `ScriptHostError`. */
  async #call(spec: CallSpec): Promise<Envelope> {
    const account = `${this.#baseUrl}/accounts/${encodeURIComponent(this.#accountId)}`;
    const url =
      spec.accountPath === undefined
        ? `${account}/workers/dispatch/namespaces/${encodeURIComponent(this.#namespace)}/scripts/` +
          `${encodeURIComponent(spec.scriptName)}${spec.suffix ?? ""}`
        : `${account}${spec.accountPath}`;
    const where = { op: spec.op, method: spec.method, script: spec.scriptName, namespace: this.#namespace };
    try {
      return await pRetry((attempt) => this.#attempt(spec, url, attempt), {
        retries: this.#attempts - 1,
        // p-retry's own delay is off: onFailedAttempt waits max(Retry-After, backoff) instead,
        // because p-retry knows nothing of Retry-After.
        minTimeout: 0,
        shouldRetry: ({ error }) => error instanceof TransientFailure,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof TransientFailure) || retriesLeft === 0) return;
          const retryAfterMs = error.retryAfterMs ?? 0;
          if (retryAfterMs > this.#maxDelayMs) {
            // Throwing here ends the retries; the workflow's own step retry comes back later.
            throw new ScriptHostError(
              "unavailable",
              `Cloudflare API ${spec.op} of ${spec.scriptName}: ${error.message}; Retry-After is ` +
                `${Math.ceil(retryAfterMs / 1000)} s, longer than this call waits (${this.#maxDelayMs} ms)`,
              error.status === undefined ? {} : { status: error.status },
            );
          }
          const delayMs = Math.max(retryAfterMs, backoffMs(attemptNumber, this.#baseDelayMs, this.#maxDelayMs));
          log.warn("cf_api_retry", {
            ...where,
            attempt: attemptNumber,
            status: error.status ?? null,
            reason: error.message,
            retryAfterMs: error.retryAfterMs ?? null,
            delayMs,
          });
          await sleep(delayMs);
        },
      });
    } catch (error) {
      if (error instanceof TransientFailure) {
        log.error("cf_api_unavailable", { ...where, attempts: this.#attempts, status: error.status ?? null });
        throw new ScriptHostError(
          "unavailable",
          `Cloudflare API ${spec.op} of ${spec.scriptName} still failing after ${this.#attempts} attempts: ${error.message}`,
          error.status === undefined ? {} : { status: error.status },
        );
      }
      // not_found is an answer (getScript → null, delete → no-op), not an error worth a log line.
      if (error instanceof ScriptHostError && error.code !== "not_found") {
        log.warn("cf_api_error", {
          ...where,
          // Not `code`: that key is the log line's own code (lib/log.ts).
          errorCode: error.code,
          status: error.details?.status ?? null,
          error: error.message,
        });
      }
      throw error;
    }
  }

  /** A single HTTP exchange: the envelope on success, `TransientFailure` to retry, `AbortError` to stop. */
  async #attempt(spec: CallSpec, url: string, attempt: number): Promise<Envelope> {
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(url, {
        method: spec.method,
        headers: {
          Authorization: `Bearer ${spec.token ?? this.#apiToken}`,
          ...(typeof spec.body === "string" ? { "Content-Type": "application/json" } : {}),
        },
        body: spec.body ?? null,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      // Wrapped so p-retry does not give up on it: it only retries TypeErrors it recognises
      // as network errors, by message, and workerd's messages are not on its list.
      throw new TransientFailure(`network error on attempt ${attempt}: ${describeError(error)}`, undefined, undefined);
    }
    const envelope = parseEnvelope(text);
    const status = response.status;
    if (status === 429 || status >= 500) {
      throw new TransientFailure(
        `HTTP ${status}${describeCfErrors(envelope?.errors ?? [])}`,
        status,
        parseRetryAfter(response.headers.get("retry-after")),
      );
    }
    if (envelope === undefined) {
      throw new AbortError(
        new ScriptHostError(
          "unavailable",
          `Cloudflare API ${spec.op} of ${spec.scriptName}: HTTP ${status} with a body that is not the API envelope: ${text.slice(0, 200)}`,
          { status },
        ),
      );
    }
    if (response.ok && envelope.success) return envelope;
    throw new AbortError(this.#toError(spec, status, envelope.errors));
  }

  /** Maps a final (non-retryable) API error to the port's error codes. */
  #toError(spec: CallSpec, status: number, errors: CfMessage[]): ScriptHostError {
    const what = `Cloudflare API ${spec.op} of ${spec.scriptName} (HTTP ${status})${describeCfErrors(errors)}`;
    const mismatch = errors.find(
      (error) => error.code === CF_MIGRATION_TAG_PRECONDITION || /migration tag precondition/i.test(error.message),
    );
    if (mismatch !== undefined) {
      // Keep the live tag when the API names it (either wording; "expected tag is ''" means the
      // script has none); otherwise leave it undefined so the caller re-reads it with getScript.
      const liveTag = liveTagOf(mismatch.message);
      return new ScriptHostError(
        "migration_tag_mismatch",
        `${what}: the script's live migration tag is ${liveTag === undefined ? "not the old_tag sent" : (liveTag ?? "none")}; re-read it and recompute the migration`,
        liveTag === undefined ? { status } : { status, liveTag },
      );
    }
    if (status === 404 && errors.some((error) => error.code === CF_COULD_NOT_ROUTE)) {
      // Not a missing script: the account id is wrong. Retrying after on-call fixes CF_ACCOUNT_ID helps.
      return new ScriptHostError(
        "unavailable",
        `${what}: account ${this.#accountId} does not exist for this token; check CF_ACCOUNT_ID`,
        { status },
      );
    }
    if (
      status === 404 &&
      spec.accountPath === undefined &&
      !errors.some((error) => error.code === CF_SCRIPT_NOT_FOUND)
    ) {
      // A 404 on a script path that is not "script not found" is the namespace: answering
      // not_found would make getScript report "no script" and the deploy start over as a first one.
      return new ScriptHostError(
        "unavailable",
        `${what}: the dispatch namespace ${this.#namespace} was not found in account ${this.#accountId}; create it (wrangler dispatch-namespace create) or fix CF_DISPATCH_NAMESPACE`,
        { status },
      );
    }
    if (status === 404) return new ScriptHostError("not_found", what, { status });
    if (status === 401 || status === 403) {
      // Not the script's fault and not fixed by retrying this call: the token is wrong, expired or
      // lacks "Workers Scripts: Edit". `unavailable` lets the workflow retry once on-call fixes it.
      return new ScriptHostError(
        "unavailable",
        `${what}: the API token was refused; check that it is valid and has "Workers Scripts: Edit" on account ${this.#accountId}`,
        { status },
      );
    }
    const cause = errors.map((error) => REFUSAL_CAUSES[error.code]).find((text) => text !== undefined);
    return new ScriptHostError(
      "invalid_script",
      `${what}: the platform refused the script${cause === undefined ? "" : `: ${cause}`}`,
      { status },
    );
  }

  #parse<T>(op: string, schema: z.ZodType<T>, value: unknown): T {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    log.error("cf_api_unexpected_shape", { op, issues: parsed.error.issues });
    throw new ScriptHostError(
      "unavailable",
      `Cloudflare API ${op} answered a shape this client does not understand: ${z.prettifyError(parsed.error)}`,
    );
  }

  /** Keeps the bindings this port models; logs the others so a silent drop is visible. */
  #knownBindings(scriptName: string, bindings: ReadonlyArray<{ type: string; name: string }>): ScriptBinding[] {
    const known: ScriptBinding[] = [];
    for (const binding of bindings) {
      const parsed = ScriptBindingSchema.safeParse(binding);
      if (parsed.success) known.push(parsed.data);
      else log.warn("cf_api_unknown_binding", { script: scriptName, type: binding.type, name: binding.name });
    }
    return known;
  }
}

/**
 * The `metadata` part of a module Worker upload. `limits` caps every invocation of the user Worker
 * (CPU ms, subrequests), so a runaway tenant ends with an error instead of spending its plan's
 * maximum; the dispatch Worker may lower them further per request. `tail_consumers` names
 * Shipyard's own Worker (`{service}`: an account-level Worker, so no `namespace`, and no wrangler
 * environment), whose `tail` handler meters the script's Durable Objects from the runtime's trace
 * items; the tenant's manifest cannot name tail consumers (schemas/deploy.schema.ts refuses the key).
 */
export function uploadMetadata(
  request: UploadRequest,
  assetsJwt: string | undefined,
  tailConsumer: string,
): Record<string, unknown> {
  return {
    main_module: request.mainModule,
    ...(assetsJwt === undefined || request.assets === undefined
      ? {}
      : { assets: { jwt: assetsJwt, config: request.assets.config } }),
    bindings: request.bindings,
    compatibility_date: request.compatibilityDate,
    ...(request.compatibilityFlags === undefined ? {} : { compatibility_flags: request.compatibilityFlags }),
    ...(request.migrations === undefined ? {} : { migrations: request.migrations }),
    limits: { cpu_ms: TENANT_LIMITS.cpuMs, subrequests: TENANT_LIMITS.subRequests },
    tail_consumers: [{ service: tailConsumer }],
  };
}

/** The multipart body of a module Worker upload: a `metadata` JSON part, then one part per module. */
function buildUploadForm(request: UploadRequest, assetsJwt: string | undefined, tailConsumer: string): FormData {
  const metadata = uploadMetadata(request, assetsJwt, tailConsumer);
  const form = new FormData();
  form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
  for (const module of request.modules) {
    const content = module.type === "data" || module.type === "wasm" ? decodeBase64(module) : module.content;
    form.append(module.name, new Blob([content], { type: MODULE_CONTENT_TYPES[module.type] }), module.name);
  }
  return form;
}

function decodeBase64(module: ScriptModule): Uint8Array<ArrayBuffer> {
  let binary: string;
  try {
    binary = atob(module.content);
  } catch {
    throw new ScriptHostError("invalid_script", `Module ${module.name} (${module.type}) is not valid base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/**
 * The live tag a 10079 message names: a string, null for "expected tag is ''" (no tag), undefined
 * when the message names none.
 */
export function liveTagOf(message: string): string | null | undefined {
  const expected = /expected tag is\s+'([^']*)'/i.exec(message);
  if (expected !== null) return expected[1] === "" || expected[1] === undefined ? null : expected[1];
  return /current tag is\s+["'`]?([^\s"'`;,]+)/i.exec(message)?.[1];
}

function parseEnvelope(text: string): Envelope | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = EnvelopeSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

function describeCfErrors(errors: readonly CfMessage[]): string {
  return errors.length === 0 ? "" : `: ${errors.map((error) => `${error.code} ${error.message}`).join("; ")}`;
}

/**
 * `Retry-After` in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when
 * absent or unreadable, so plain backoff applies.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
