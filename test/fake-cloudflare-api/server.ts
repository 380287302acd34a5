/**
 * A local fake of the Workers for Platforms script API, for tests and local runs: plain Node
 * `node:http`, state in memory, answers in the real API's envelope `{success, errors, messages, result}`.
 *
 * It enforces the rules a deploy can trip over, with the real error codes where they are known:
 *   - the bearer token must match (else 403, code 10000 "Authentication error");
 *   - `metadata.main_module` names exactly one uploaded module part; module parts carry a known
 *     content type; `compatibility_date` is required (code 10021, validation error);
 *   - the account and the dispatch namespace exist (unknown account: 404, code 7003 "Could not
 *     route to …, perhaps your object identifier is invalid?"); a script name has at most 63
 *     characters of `[a-z0-9_-]`;
 *   - `migrations` in either of the API's forms (single-step fields at the top, or `steps`), with
 *     `transferred_classes` from another script of the namespace; `old_tag` equals the live tag,
 *     and is absent only when there is none (code 10079, in the newer "got tag '…' when expected
 *     tag is '…'" wording, or the older "current tag is <tag>" one for scripts a control names);
 *   - a `durable_object_namespace` binding names a class declared by the script's migrations
 *     (cumulative new_sqlite_classes/new_classes/renamed and transferred `to`, minus deleted), code 10061;
 *   - what starting the version would check (script-rules.ts, parsing the JavaScript with acorn):
 *     the size limit (10027), known compatibility flags, no syntax error and no import of a module
 *     that was not uploaded (10021), every class a migration creates exported (10070), every class
 *     with live objects still exported (10064);
 *   - deleting a script that has Durable Object classes needs `?force=true`;
 *   - static assets go through an upload session, as on Cloudflare: `POST .../scripts/:name/
 *     assets-upload-session` with a manifest (`/path` → 32-hex hash and size) answers a JWT and the
 *     buckets of hashes it does not hold yet; each bucket is posted to `/accounts/:id/workers/assets/
 *     upload?base64=true` with that JWT (not the API token), every part named by a hash of the
 *     session and of the manifest's size; the last bucket answers 201 with the completion token, the
 *     others 202; a script upload's `metadata.assets.jwt` must be a completion token of the same
 *     script, and an `assets` binding needs `metadata.assets`;
 *   - `tail_consumers` (upload metadata and settings) name Workers that exist on the account
 *     (test/fake-cloudflare-api/tail-consumers.ts); the account's own Workers are `accountWorkers`.
 * Codes and messages marked "(fake)" are this fake's own where the real text is not known.
 *
 * Test controls live outside the API prefix: `POST /__control` with a `ControlCommand` (fail the next
 * N requests with 429 + Retry-After or 5xx, the older 10079 wording for a script, create a
 * dispatch namespace, or reset), `GET /__control/requests?script=` for the
 * request log with the fake's receive timestamps, `GET /__control/scripts/<name>` for what was stored.
 */
import { D1_PATH, FakeD1 } from "./d1.ts";
import {
  checkCompatibilityFlags,
  checkExportedClasses,
  checkModules,
  checkScriptName,
  checkSize,
} from "./script-rules.ts";
import { FakeKV, KV_PATH } from "./kv.ts";
import { TailConsumerError, type TailConsumer, parseTailConsumers } from "./tail-consumers.ts";
import { createHash, randomUUID } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type ControlCommand,
  FAKE_CF_API_PREFIX,
  FAKE_CF_API_TOKEN,
  type FaultCommand,
  type LoggedRequest,
  type UsagePoint,
  ANALYTICS_ENGINE_SCRIPT,
} from "./protocol.ts";

/** Part content types the upload API accepts for modules (wrangler's module types). */
const MODULE_CONTENT_TYPES = new Set([
  "application/javascript+module",
  "application/javascript",
  "text/plain",
  "application/octet-stream",
  "application/wasm",
  "application/source-map",
]);
const MAIN_MODULE_CONTENT_TYPES = new Set(["application/javascript+module", "application/javascript"]);
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** `POST /accounts/{id}/analytics_engine/sql`: the Analytics Engine SQL API. */
const AE_SQL_PATH = /^\/accounts\/[^/]+\/analytics_engine\/sql$/;
/** The one dataset the fake holds, and the query shape the UsageSource sends. */
const AE_DATASET = "shipyard_do_usage";
const AE_USAGE_QUERY =
  /^SELECT blob1 AS project_id, SUM\(_sample_interval \* double1\) AS wall_ms, SUM\(_sample_interval\) AS invocations FROM (\w+) WHERE timestamp > NOW\(\) - INTERVAL '(\d+)' HOUR(?: AND blob1 = '([a-z0-9-]+)')? GROUP BY project_id$/;

const ASSET_SESSION_PATH =
  /^\/accounts\/(?<account>[^/]+)\/workers\/dispatch\/namespaces\/(?<namespace>[^/]+)\/scripts\/(?<script>[^/]+)\/assets-upload-session$/;
const ASSET_UPLOAD_PATH = /^\/accounts\/(?<account>[^/]+)\/workers\/assets\/upload$/;
/** Hashes per bucket the fake asks for (the real API chooses its own sizes). */
const ASSET_BUCKET_SIZE = 3;
/** Session and completion tokens are valid for an hour, as the real API's JWTs. */
const ASSET_TOKEN_TTL_MS = 3_600_000;
const ASSET_HTML_HANDLING = new Set(["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"]);
const ASSET_NOT_FOUND_HANDLING = new Set(["single-page-application", "404-page", "none"]);

/** One assets upload session: the manifest it registered and the hashes still to upload. */
interface AssetSession {
  key: string;
  script: string;
  manifest: Map<string, { hash: string; size: number }>;
  pending: Set<string>;
  completion: string;
  expiresAt: number;
}

/**
 * Dispatch namespaces every fake account has: the ones Shipyard's tests and config name. Others
 * come from a `namespace` control command.
 */
const KNOWN_NAMESPACES = new Set(["shipyard-tenants", "shipyard-tenants-test", "ns", "unused"]);
/** The code of the fake's "dispatch namespace not found" (the real one is not documented). */
const DISPATCH_NAMESPACE_NOT_FOUND = 100_119;

const SCRIPT_PATH =
  /^\/accounts\/(?<account>[^/]+)\/workers\/dispatch\/namespaces\/(?<namespace>[^/]+)\/scripts\/(?<script>[^/]+)(?<settings>\/settings)?$/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface StoredModule {
  contentType: string;
  bytes: Uint8Array;
}

interface StoredScript {
  mainModule: string;
  modules: Map<string, StoredModule>;
  bindings: JsonObject[];
  compatibilityDate: string;
  compatibilityFlags: string[];
  migrationTag: string | null;
  /** Durable Object classes declared by the migrations applied so far. */
  classes: Set<string>;
  etag: string;
  deploymentId: string;
  createdOn: string;
  modifiedOn: string;
  /** The version's static assets (path → hash, size) and their serving config, if any. */
  assets: { manifest: Record<string, { hash: string; size: number }>; config: JsonObject } | null;
  tailConsumers: TailConsumer[];
}

/** An API error the fake answers with: HTTP status plus the envelope's `errors[0]`. */
class ApiError extends Error {
  readonly status: number;
  readonly code: number;
  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const invalid = (message: string, code = 10021) => new ApiError(400, code, message);

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(object: JsonObject, key: string, where: string): string | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${where}.${key} must be a string (fake)`);
  return value;
}

function stringArray(object: JsonObject, key: string, where: string): string[] {
  const value = object[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw invalid(`${where}.${key} must be an array of strings (fake)`);
  }
  return value.filter((item) => typeof item === "string");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalid(`${what} is not valid JSON (fake)`);
  }
}

/** Bindings as the API takes them: objects with a `type` and a unique `name`. */
/**
 * Resolves `{"type": "inherit", "name", "old_name"?}` bindings against the bindings of the version
 * before (Cloudflare's multipart upload metadata: "inherit" keeps a binding — a secret's value
 * included, which the API never returns — from the previous version; `old_name` renames it). A
 * name the previous version did not have is refused (the real text is not documented: fake).
 */
function inheritBindings(bindings: JsonObject[], previous: readonly JsonObject[]): JsonObject[] {
  return bindings.map((binding): JsonObject => {
    if (binding.type !== "inherit") return binding;
    // parseBindings checked that every binding has a string name.
    const name = typeof binding.name === "string" ? binding.name : "";
    const from = typeof binding.old_name === "string" ? binding.old_name : name;
    const kept = previous.find((candidate) => candidate.name === from);
    if (kept === undefined) throw invalid(`binding ${name}: nothing to inherit named ${from} (fake)`);
    return { ...kept, name };
  });
}

function parseBindings(value: Json | undefined): JsonObject[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid("bindings must be an array (fake)");
  const names = new Set<string>();
  return value.map((binding, index) => {
    if (!isObject(binding) || typeof binding.type !== "string" || typeof binding.name !== "string") {
      throw invalid(`bindings[${index}] needs a string type and name (fake)`);
    }
    if (names.has(binding.name)) throw invalid(`Binding name '${binding.name}' is used more than once (fake)`);
    names.add(binding.name);
    if (binding.type === "durable_object_namespace" && typeof binding.class_name !== "string") {
      throw invalid(`binding ${binding.name} of type durable_object_namespace needs a class_name (fake)`);
    }
    return binding;
  });
}

/** The migration fields of one step (MigrationStep in cloudflare-typescript's workers scripts types). */
const STEP_FIELDS = ["new_classes", "new_sqlite_classes", "renamed_classes", "deleted_classes", "transferred_classes"];

/** A `transferred_classes` entry: class `from` of script `fromScript` (same namespace) becomes `to` here. */
export interface Transfer {
  from: string;
  fromScript: string;
  to: string;
}

/**
 * The 10079 refusal. Newer API answers: "Actor migration tag precondition failed, got tag '<sent>'
 * when expected tag is '<live>'" (quoted from real uploads, e.g. "got tag '' when expected tag is
 * 'v6'" in several repositories' recovery code, 2026); older ones: "Migration tag precondition
 * failed; current tag is <tag>" (cloudflare/workers-sdk#705). The fake answers the newer wording,
 * or the older one for scripts a `legacy_10079` control command names.
 */
function migrationTagMismatch(sent: string | null, live: string | null, legacy: boolean): ApiError {
  const message = legacy
    ? live === null
      ? "Migration tag precondition failed; the script has no migration tag (fake)"
      : `Migration tag precondition failed; current tag is ${live}`
    : `Actor migration tag precondition failed, got tag '${sent ?? ""}' when expected tag is '${live ?? ""}'`;
  return new ApiError(400, 10079, message);
}

/**
 * Applies `migrations` to the script's live tag and classes, or throws the API's error. Both forms
 * the API takes are read: the single-step one (`old_tag`, `new_tag` and the step's fields at the top:
 * SingleStepMigration) and the multi-step one (`old_tag`, `new_tag`, `steps`: MultipleStepMigrations);
 * a body mixing them is refused (fake). Returns the new tag and classes, the classes this upload
 * creates (which the code must export) and the transfers to carry out; nothing is stored until
 * the whole upload has been checked. `classesOf(script)` answers another script's classes in the
 * same namespace (for `transferred_classes`), or undefined if there is no such script.
 */
function applyMigrations(
  migrations: Json | undefined,
  liveTag: string | null,
  liveClasses: ReadonlySet<string>,
  options: { legacy10079?: boolean; classesOf?: (script: string) => ReadonlySet<string> | undefined } = {},
): { tag: string | null; classes: Set<string>; created: string[]; transfers: Transfer[] } {
  const classes = new Set(liveClasses);
  const created: string[] = [];
  const transfers: Transfer[] = [];
  if (migrations === undefined || migrations === null) return { tag: liveTag, classes, created, transfers };
  if (!isObject(migrations)) throw invalid("migrations must be an object (fake)");
  const oldTag = optionalString(migrations, "old_tag", "migrations") ?? null;
  const newTag = optionalString(migrations, "new_tag", "migrations");
  if ((oldTag ?? "") !== (liveTag ?? "")) throw migrationTagMismatch(oldTag, liveTag, options.legacy10079 === true);
  const singleStep = STEP_FIELDS.some((field) => migrations[field] !== undefined && migrations[field] !== null);
  if (singleStep && migrations.steps !== undefined) {
    throw invalid("migrations takes either steps or the single-step fields (new_classes, …), not both (fake)");
  }
  const steps: Json = singleStep ? [migrations] : (migrations.steps ?? []);
  if (!Array.isArray(steps)) throw invalid("migrations.steps must be an array (fake)");
  for (const [index, step] of steps.entries()) {
    const where = singleStep ? "migrations" : `migrations.steps[${index}]`;
    if (!isObject(step)) throw invalid(`${where} must be an object (fake)`);
    for (const name of [
      ...stringArray(step, "new_classes", where),
      ...stringArray(step, "new_sqlite_classes", where),
    ]) {
      if (classes.has(name)) {
        // workers-sdk users quote it: "Cannot apply new-class migration to class 'MergeQueue' that
        // is already depended on by existing Durable Objects [code: 10074]".
        throw invalid(
          `Cannot apply new-class migration to class '${name}' that is already depended on by existing Durable Objects`,
          10074,
        );
      }
      classes.add(name);
      created.push(name);
    }
    const renamed = step.renamed_classes ?? [];
    if (!Array.isArray(renamed)) throw invalid(`${where}.renamed_classes must be an array (fake)`);
    for (const rename of renamed) {
      if (!isObject(rename) || typeof rename.from !== "string" || typeof rename.to !== "string") {
        throw invalid(`${where}.renamed_classes entries need string from and to (fake)`);
      }
      if (!classes.has(rename.from)) throw invalid(`Cannot rename non-existent class '${rename.from}' (fake)`);
      if (classes.has(rename.to)) throw invalid(`Cannot rename to existing class '${rename.to}' (fake)`);
      classes.delete(rename.from);
      classes.add(rename.to);
      created.push(rename.to);
    }
    const transferred = step.transferred_classes ?? [];
    if (!Array.isArray(transferred)) throw invalid(`${where}.transferred_classes must be an array (fake)`);
    for (const transfer of transferred) {
      if (
        !isObject(transfer) ||
        typeof transfer.from !== "string" ||
        typeof transfer.from_script !== "string" ||
        typeof transfer.to !== "string"
      ) {
        throw invalid(`${where}.transferred_classes entries need string from, from_script and to (fake)`);
      }
      const source = options.classesOf?.(transfer.from_script);
      if (source === undefined || !source.has(transfer.from)) {
        throw invalid(
          `Cannot transfer class '${transfer.from}' from script '${transfer.from_script}': that script has no such Durable Object class (fake)`,
        );
      }
      if (classes.has(transfer.to)) throw invalid(`Cannot transfer to existing class '${transfer.to}' (fake)`);
      classes.add(transfer.to);
      created.push(transfer.to);
      transfers.push({ from: transfer.from, fromScript: transfer.from_script, to: transfer.to });
    }
    for (const name of stringArray(step, "deleted_classes", where)) {
      if (!classes.delete(name)) throw invalid(`Cannot apply deleted_classes migration to non-existent class ${name}`);
    }
  }
  if (newTag === undefined) {
    if (steps.length > 0) throw invalid("migrations.new_tag is required with steps (fake)");
    return { tag: liveTag, classes, created, transfers };
  }
  return { tag: newTag, classes, created, transfers };
}

/** Every Durable Object binding of this script must name a class its migrations declared. */
function checkDurableObjectBindings(bindings: readonly JsonObject[], classes: ReadonlySet<string>): void {
  for (const binding of bindings) {
    if (binding.type !== "durable_object_namespace") continue;
    // A binding to another script's class is that script's business.
    if (typeof binding.script_name === "string") continue;
    const className = binding.class_name;
    if (typeof className === "string" && !classes.has(className)) {
      throw invalid(
        `Cannot create binding for class '${className}' because it is not currently configured to implement Durable Objects. Ensure a --new-class migration has been applied to it.`,
        10061,
      );
    }
  }
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

/** Parses a multipart body with the Web `Request.formData()`, as the real API reads it. */
async function readForm(request: IncomingMessage, body: Buffer): Promise<FormData> {
  const contentType = request.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw new ApiError(415, 10021, "Content-Type must be multipart/form-data (fake)");
  }
  try {
    return await new Request("http://fake.invalid/", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new Uint8Array(body),
    }).formData();
  } catch (error) {
    throw invalid(`Could not parse the multipart body: ${String(error)} (fake)`);
  }
}

async function jsonPart(form: FormData, name: string): Promise<JsonObject> {
  const parts = form.getAll(name);
  const [part] = parts;
  if (part === undefined || parts.length > 1) throw invalid(`Expected exactly one '${name}' part (fake)`);
  const value = parseJson(typeof part === "string" ? part : await part.text(), `The '${name}' part`);
  if (!isObject(value)) throw invalid(`The '${name}' part must be a JSON object (fake)`);
  return value;
}

function now(): string {
  return new Date().toISOString();
}

/** The fake API. `start()` listens on an ephemeral port and returns the API base URL. */
export class FakeCloudflareApi {
  readonly #token: string;
  /** Account-level Workers (outside any dispatch namespace) a tail consumer may name. */
  readonly #accountWorkers: ReadonlySet<string>;
  readonly #scripts = new Map<string, StoredScript>();
  readonly #d1 = new FakeD1();
  readonly #kv = new FakeKV();
  #faults: FaultCommand[] = [];
  /** Scripts whose 10079 refusals use the older wording (control `legacy_10079`). */
  readonly #legacy10079 = new Set<string>();
  /** Namespaces created by control commands, as `<account>/<name>`. */
  readonly #namespaces = new Set<string>();
  #points: UsagePoint[] = [];
  #log: LoggedRequest[] = [];
  #server: Server | undefined;
  /** Asset bytes by `<account>:<hash>`: uploaded once, reused by later sessions. */
  readonly #assetBlobs = new Map<string, number>();
  /** Open upload sessions by session JWT, and finished ones by completion token. */
  readonly #assetSessions = new Map<string, AssetSession>();
  readonly #assetCompletions = new Map<string, AssetSession>();

  /** `accountWorkers`: the account's own Workers, by default Shipyard's (`shipyard`), deployed first. */
  constructor(options: { token?: string; accountWorkers?: readonly string[] } = {}) {
    this.#token = options.token ?? FAKE_CF_API_TOKEN;
    this.#accountWorkers = new Set(options.accountWorkers ?? ["shipyard"]);
  }

  /** Listens on `host:port` (port 0 = ephemeral) and returns e.g. `http://127.0.0.1:4711/client/v4`. */
  async start(port = 0, host = "127.0.0.1"): Promise<string> {
    const server = createServer((request, response) => {
      void this.#handle(request, response);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const address: AddressInfo | string | null = server.address();
    if (address === null || typeof address === "string") throw new Error("fake Cloudflare API: no TCP address");
    return `http://${host}:${address.port}${FAKE_CF_API_PREFIX}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  }

  /** Every API request received so far, oldest first. */
  get requests(): readonly LoggedRequest[] {
    return this.#log;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = new URL(request.url ?? "/", "http://fake.invalid");
    const method = request.method ?? "GET";
    try {
      const body = await readBody(request);
      if (url.pathname === "/__control" || url.pathname.startsWith("/__control/")) {
        this.#control(method, url, body, response);
        return;
      }
      if (
        url.pathname.startsWith(FAKE_CF_API_PREFIX) &&
        AE_SQL_PATH.test(url.pathname.slice(FAKE_CF_API_PREFIX.length))
      ) {
        const status = this.#analyticsSql(method, request, body, response);
        this.#log.push({ method, path: url.pathname, script: ANALYTICS_ENGINE_SCRIPT, status, receivedAt });
        return;
      }
      const apiPath = url.pathname.startsWith(FAKE_CF_API_PREFIX)
        ? url.pathname.slice(FAKE_CF_API_PREFIX.length)
        : null;
      const assetPath = apiPath === null ? null : (ASSET_SESSION_PATH.exec(apiPath) ?? ASSET_UPLOAD_PATH.exec(apiPath));
      if (assetPath?.groups !== undefined) {
        const { status, script } = await this.#assets(method, url, request, body, assetPath.groups, response);
        this.#log.push({ method, path: url.pathname, script, status, receivedAt });
        return;
      }
      const kvPath = apiPath === null ? null : KV_PATH.exec(apiPath);
      const d1Path = apiPath === null ? null : (D1_PATH.exec(apiPath) ?? kvPath);
      if (d1Path?.groups !== undefined) {
        const status = this.#d1Api(
          { method, url, authorization: request.headers.authorization, body, kv: kvPath !== null },
          d1Path.groups,
          response,
        );
        this.#log.push({ method, path: url.pathname, script: d1Subject(d1Path.groups), status, receivedAt });
        return;
      }
      const match = apiPath === null ? null : SCRIPT_PATH.exec(apiPath);
      const script = match?.groups?.script === undefined ? null : decodeURIComponent(match.groups.script);
      const status = await this.#api(method, url, request, body, match, script, response);
      this.#log.push({ method, path: url.pathname, script, status, receivedAt });
    } catch (error) {
      // Only a bug in the fake gets here; answer like the real API's 500 so it stays visible.
      send(response, 500, envelopeError(10013, `fake Cloudflare API crashed: ${String(error)}`));
    }
  }

  /** A `d1` binding must name, by `id`, a database of the account (the real API refuses the upload otherwise). */
  #checkD1Bindings(account: string, bindings: readonly JsonObject[]): void {
    for (const binding of bindings) {
      if (binding.type === "kv_namespace") {
        if (typeof binding.namespace_id !== "string" || !this.#kv.exists(account, binding.namespace_id)) {
          throw invalid(
            `binding ${JSON.stringify(binding.name)} of type kv_namespace must have the namespace_id of a namespace of this account (fake)`,
          );
        }
        continue;
      }
      if (binding.type !== "d1") continue;
      if (typeof binding.id !== "string" || !this.#d1.exists(account, binding.id)) {
        throw invalid(
          `binding ${JSON.stringify(binding.name)} of type d1 must have the id of a database of this account (fake)`,
        );
      }
    }
  }

  /** The D1 API (test/fake-cloudflare-api/d1.ts), behind the same token check as the rest. */
  #d1Api(
    {
      method,
      url,
      authorization,
      body,
      kv,
    }: { method: string; url: URL; authorization: string | undefined; body: Buffer; kv: boolean },
    groups: Record<string, string | undefined>,
    response: ServerResponse,
  ): number {
    const fault = this.#takeFault(d1Subject(groups));
    if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { "retry-after": fault.retryAfter };
      return send(response, fault.status, envelopeError(10013, "An unknown error has occurred (fake fault)"), headers);
    }
    if (authorization !== `Bearer ${this.#token}`) {
      return send(response, 403, envelopeError(10000, "Authentication error"));
    }
    const answer = (kv ? this.#kv : this.#d1).handle(method, url, groups, body.toString("utf8"));
    if (answer.ok) return send(response, 200, ok(answer.result));
    return send(response, answer.status, envelopeError(answer.code, answer.message));
  }

  async #api(
    method: string,
    url: URL,
    request: IncomingMessage,
    body: Buffer,
    match: RegExpExecArray | null,
    script: string | null,
    response: ServerResponse,
  ): Promise<number> {
    const fault = this.#takeFault(script);
    if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { "retry-after": fault.retryAfter };
      const [code, message] =
        fault.status === 429
          ? [971, "Please wait and consider throttling your request speed"]
          : fault.status >= 500
            ? [10013, "An unknown error has occurred (fake fault)"]
            : [10021, `Injected fault ${fault.status} (fake)`];
      return send(response, fault.status, envelopeError(code, message), headers);
    }
    try {
      if (request.headers.authorization !== `Bearer ${this.#token}`) {
        throw new ApiError(403, 10000, "Authentication error");
      }
      if (match?.groups === undefined || script === null) {
        throw new ApiError(404, 7003, "Could not route to this path (fake)");
      }
      this.#checkAccountAndNamespace(url, match.groups.account ?? "", match.groups.namespace ?? "");
      const key = `${match.groups.account}/${match.groups.namespace}/${script}`;
      const settings = match.groups.settings !== undefined;
      let result: Json;
      if (!settings && method === "PUT") result = await this.#upload(key, script, request, body);
      else if (!settings && method === "GET") result = this.#details(key, script, match.groups.namespace ?? "");
      else if (!settings && method === "DELETE") result = this.#delete(key, url);
      else if (settings && method === "GET") result = settingsOf(this.#existing(key));
      else if (settings && method === "PATCH") result = await this.#patchSettings(key, request, body);
      else throw new ApiError(405, 10405, `Method ${method} not allowed here (fake)`);
      return send(response, 200, { success: true, errors: [], messages: [], result });
    } catch (error) {
      if (error instanceof ApiError) return send(response, error.status, envelopeError(error.code, error.message));
      throw error;
    }
  }

  /** The two asset routes: the upload session (API token) and the bucket uploads (session JWT). */
  async #assets(
    method: string,
    url: URL,
    request: IncomingMessage,
    body: Buffer,
    groups: Record<string, string | undefined>,
    response: ServerResponse,
  ): Promise<{ status: number; script: string | null }> {
    const sessionScript = groups.script === undefined ? null : decodeURIComponent(groups.script);
    const bearer = (request.headers.authorization ?? "").replace(/^Bearer /, "");
    const session = sessionScript === null ? this.#assetSessions.get(bearer) : undefined;
    const script = sessionScript ?? session?.script ?? null;
    const fault = this.#takeFault(script);
    if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { "retry-after": fault.retryAfter };
      return { status: send(response, fault.status, envelopeError(10013, "Injected fault (fake)"), headers), script };
    }
    try {
      if (method !== "POST") throw new ApiError(405, 10405, `Method ${method} not allowed here (fake)`);
      if (sessionScript !== null) {
        if (bearer !== this.#token) throw new ApiError(403, 10000, "Authentication error");
        const key = `${groups.account}/${groups.namespace}/${sessionScript}`;
        return { status: send(response, 200, ok(this.#openAssetSession(key, sessionScript, body))), script };
      }
      if (session === undefined || session.expiresAt < Date.now()) {
        throw new ApiError(401, 10000, "Authentication error: not a valid assets upload session JWT (fake)");
      }
      if (url.searchParams.get("base64") !== "true")
        throw invalid("this fake takes asset uploads with ?base64=true only (fake)");
      const done = await this.#uploadBucket(session, groups.account ?? "", request, body);
      return {
        status: send(response, done ? 201 : 202, ok({ jwt: done ? session.completion : null })),
        script,
      };
    } catch (error) {
      if (error instanceof ApiError)
        return { status: send(response, error.status, envelopeError(error.code, error.message)), script };
      throw error;
    }
  }

  #openAssetSession(key: string, script: string, body: Buffer): Json {
    const parsed = parseJson(body.toString("utf8"), "The request body");
    if (!isObject(parsed) || !isObject(parsed.manifest))
      throw invalid("body.manifest must be an object of /path → {hash, size} (fake)");
    const account = key.split("/")[0] ?? "";
    const manifest = new Map<string, { hash: string; size: number }>();
    for (const [assetPath, entry] of Object.entries(parsed.manifest)) {
      if (!assetPath.startsWith("/")) throw invalid(`manifest key ${assetPath} must start with / (fake)`);
      if (!isObject(entry) || typeof entry.hash !== "string" || !/^[0-9a-f]{32}$/.test(entry.hash)) {
        throw invalid(`manifest ${assetPath}: hash must be 32 hexadecimal characters`);
      }
      if (
        typeof entry.size !== "number" ||
        !Number.isInteger(entry.size) ||
        entry.size < 0 ||
        entry.size > 25 * 1024 * 1024
      ) {
        throw invalid(`manifest ${assetPath}: size must be a byte count under 25 MiB`);
      }
      manifest.set(assetPath, { hash: entry.hash, size: entry.size });
    }
    const pending = new Set(
      [...manifest.values()].map((entry) => entry.hash).filter((hash) => !this.#assetBlobs.has(`${account}:${hash}`)),
    );
    const session: AssetSession = {
      key,
      script,
      manifest,
      pending,
      completion: `completion-${randomUUID()}`,
      expiresAt: Date.now() + ASSET_TOKEN_TTL_MS,
    };
    this.#assetCompletions.set(session.completion, session);
    if (pending.size === 0) return { jwt: session.completion, buckets: [] };
    const jwt = `session-${randomUUID()}`;
    this.#assetSessions.set(jwt, session);
    const hashes = [...pending];
    const buckets: Json[] = [];
    for (let index = 0; index < hashes.length; index += ASSET_BUCKET_SIZE)
      buckets.push(hashes.slice(index, index + ASSET_BUCKET_SIZE));
    return { jwt, buckets };
  }

  /** Stores one bucket; true when it was the session's last. */
  async #uploadBucket(
    session: AssetSession,
    account: string,
    request: IncomingMessage,
    body: Buffer,
  ): Promise<boolean> {
    const form = await readForm(request, body);
    const sizes = new Map([...session.manifest.values()].map((entry) => [entry.hash, entry.size]));
    for (const [hash, part] of form.entries()) {
      if (typeof part === "string") throw invalid(`Part '${hash}' must be a file part (fake)`);
      if (!session.pending.has(hash)) throw invalid(`Hash ${hash} is not pending in this upload session (fake)`);
      const bytes = Buffer.from(await part.text(), "base64");
      if (bytes.byteLength !== sizes.get(hash)) {
        throw invalid(`Asset ${hash} is ${bytes.byteLength} bytes, the manifest said ${sizes.get(hash)} (fake)`);
      }
      this.#assetBlobs.set(`${account}:${hash}`, bytes.byteLength);
      session.pending.delete(hash);
    }
    return session.pending.size === 0;
  }

  /** `metadata.assets` of a script upload: a completion token of this script and a valid config. */
  #uploadedAssets(key: string, value: Json | undefined): StoredScript["assets"] {
    if (value === undefined || value === null) return null;
    if (!isObject(value) || typeof value.jwt !== "string") throw invalid("metadata.assets needs a jwt (fake)");
    const session = this.#assetCompletions.get(value.jwt);
    if (session === undefined || session.key !== key || session.expiresAt < Date.now() || session.pending.size > 0) {
      throw invalid("metadata.assets.jwt is not a completion token of an assets upload session for this script");
    }
    const config = value.config ?? {};
    if (!isObject(config)) throw invalid("metadata.assets.config must be an object (fake)");
    const { html_handling: html, not_found_handling: notFound } = config;
    if (html !== undefined && !(typeof html === "string" && ASSET_HTML_HANDLING.has(html))) {
      throw invalid(
        `metadata.assets.config.html_handling ${JSON.stringify(html)} is not one of ${[...ASSET_HTML_HANDLING].join(", ")}`,
      );
    }
    if (notFound !== undefined && !(typeof notFound === "string" && ASSET_NOT_FOUND_HANDLING.has(notFound))) {
      throw invalid(`metadata.assets.config.not_found_handling ${JSON.stringify(notFound)} is not valid`);
    }
    for (const file of ["_redirects", "_headers"]) {
      if (config[file] !== undefined && typeof config[file] !== "string") {
        throw invalid(`metadata.assets.config.${file} must be the file's text`);
      }
    }
    const first = config.run_worker_first;
    if (
      first !== undefined &&
      typeof first !== "boolean" &&
      !(Array.isArray(first) && first.every((rule) => typeof rule === "string"))
    ) {
      throw invalid("metadata.assets.config.run_worker_first must be a boolean or an array of route rules");
    }
    return { manifest: Object.fromEntries(session.manifest), config };
  }

  #takeFault(script: string | null): FaultCommand | undefined {
    const index = this.#faults.findIndex((fault) => fault.script === undefined || fault.script === script);
    const fault = this.#faults[index];
    if (fault === undefined) return undefined;
    if (fault.count > 0) {
      fault.count -= 1;
      if (fault.count === 0) this.#faults.splice(index, 1);
    }
    return fault;
  }

  /** Validated `tail_consumers` of the script at `key` (`<account>/<namespace>/<script>`). */
  #tailConsumers(key: string, value: Json | undefined, where: string): TailConsumer[] {
    const account = key.split("/")[0] ?? "";
    try {
      return parseTailConsumers(value, where, (service, namespace) =>
        namespace === undefined
          ? this.#accountWorkers.has(service)
          : this.#scripts.has(`${account}/${namespace}/${service}`),
      );
    } catch (error) {
      if (error instanceof TailConsumerError) throw invalid(error.message);
      throw error;
    }
  }

  #existing(key: string): StoredScript {
    const stored = this.#scripts.get(key);
    if (stored === undefined) throw new ApiError(404, 10007, "workers.api.error.script_not_found");
    return stored;
  }

  /**
   * Accounts and namespaces must exist. The fake's accounts are the ids starting with `acct-` (every
   * test uses such ids); any other id is answered as the real API answers an account id that is not
   * one: 404, code 7003 "Could not route to /client/v4/accounts/<id>/…, perhaps your object
   * identifier is invalid?" (quoted in anomalyco/opencode#18552). Namespaces are those in
   * `KNOWN_NAMESPACES` and those a `namespace` control command created; the real API's code and text
   * for a missing namespace were not found in docs, SDK or issues: (fake).
   */
  #checkAccountAndNamespace(url: URL, account: string, namespace: string): void {
    if (!/^acct-[a-z0-9-]+$/.test(decodeURIComponent(account))) {
      throw new ApiError(404, 7003, `Could not route to ${url.pathname}, perhaps your object identifier is invalid?`);
    }
    const name = decodeURIComponent(namespace);
    if (!KNOWN_NAMESPACES.has(name) && !this.#namespaces.has(`${account}/${name}`)) {
      throw new ApiError(404, DISPATCH_NAMESPACE_NOT_FOUND, `dispatch namespace '${name}' not found (fake)`);
    }
  }

  async #upload(key: string, script: string, request: IncomingMessage, body: Buffer): Promise<Json> {
    const nameError = checkScriptName(script);
    if (nameError !== undefined) throw new ApiError(nameError.status, nameError.code, nameError.message);
    const form = await readForm(request, body);
    const metadata = await jsonPart(form, "metadata");
    const mainModule = optionalString(metadata, "main_module", "metadata");
    if (mainModule === undefined) throw invalid("metadata.main_module is required for module Workers (fake)");
    const compatibilityDate = optionalString(metadata, "compatibility_date", "metadata");
    if (compatibilityDate === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(compatibilityDate)) {
      throw invalid("metadata.compatibility_date is required, as YYYY-MM-DD (fake)");
    }
    const compatibilityFlags = stringArray(metadata, "compatibility_flags", "metadata");

    const modules = new Map<string, StoredModule>();
    for (const [name, part] of form.entries()) {
      if (name === "metadata") continue;
      if (typeof part === "string") throw invalid(`Part '${name}' must be a file part with a content type (fake)`);
      if (modules.has(name)) throw invalid(`Module '${name}' was uploaded more than once (fake)`);
      // The Web parser keeps the part's Content-Type as the File type, parameters included.
      const contentType = part.type.split(";")[0]?.trim() ?? "";
      if (!MODULE_CONTENT_TYPES.has(contentType)) {
        throw invalid(`Part '${name}' has unsupported content type '${part.type}' (fake)`);
      }
      const bytes = new Uint8Array(await part.arrayBuffer());
      if (contentType === "application/wasm" && !WASM_MAGIC.every((byte, index) => bytes[index] === byte)) {
        throw invalid(`Part '${name}' is not a WebAssembly module (fake)`);
      }
      modules.set(name, { contentType, bytes });
    }
    const main = modules.get(mainModule);
    if (main === undefined) throw invalid(`main_module '${mainModule}' is not one of the uploaded parts (fake)`);
    if (!MAIN_MODULE_CONTENT_TYPES.has(main.contentType)) {
      throw invalid(`main_module '${mainModule}' must be JavaScript, not ${main.contentType} (fake)`);
    }

    const previous = this.#scripts.get(key);
    const bindings = inheritBindings(parseBindings(metadata.bindings), previous?.bindings ?? []);
    this.#checkD1Bindings(key.split("/")[0] ?? "", bindings);
    const migrated = applyMigrations(
      metadata.migrations,
      previous?.migrationTag ?? null,
      previous?.classes ?? new Set(),
      {
        legacy10079: this.#legacy10079.has(script),
        classesOf: (other) => this.#scripts.get(`${key.slice(0, key.lastIndexOf("/"))}/${other}`)?.classes,
      },
    );
    checkDurableObjectBindings(bindings, migrated.classes);
    // What Cloudflare checks by starting the version (script-rules.ts): size, flags, syntax, imports, exports.
    const code = checkModules(modules, mainModule);
    const codeError =
      checkSize(modules) ??
      checkCompatibilityFlags(compatibilityFlags) ??
      ("error" in code ? code.error : checkExportedClasses(code.exports, migrated.created, migrated.classes));
    if (codeError !== undefined) throw new ApiError(codeError.status, codeError.code, codeError.message);
    const assets = this.#uploadedAssets(key, metadata.assets);
    const tailConsumers = this.#tailConsumers(key, metadata.tail_consumers, "metadata");
    const assetsBinding = bindings.find((binding) => binding.type === "assets");
    if (assetsBinding !== undefined && assets === null) {
      throw invalid(
        `binding ${JSON.stringify(assetsBinding.name)} of type assets needs metadata.assets (an assets upload session's completion token)`,
      );
    }

    const hash = createHash("sha256");
    for (const [name, module] of [...modules].toSorted(([a], [b]) => a.localeCompare(b))) {
      hash.update(`${name}\0${module.contentType}\0`).update(module.bytes);
    }
    const modifiedOn = now();
    const stored: StoredScript = {
      mainModule,
      modules,
      bindings,
      compatibilityDate,
      compatibilityFlags,
      migrationTag: migrated.tag,
      classes: migrated.classes,
      etag: hash.digest("hex"),
      deploymentId: randomUUID(),
      createdOn: previous?.createdOn ?? modifiedOn,
      modifiedOn,
      assets,
      tailConsumers,
    };
    this.#scripts.set(key, stored);
    this.#transfer(key, migrated.transfers);
    return {
      ...scriptObject(script, stored),
      deployment_id: stored.deploymentId,
      startup_time_ms: 1,
    };
  }

  /** A transferred class leaves its source script (its Durable Objects now belong to `key`'s script). */
  #transfer(key: string, transfers: readonly Transfer[]): void {
    const prefix = key.slice(0, key.lastIndexOf("/"));
    for (const transfer of transfers) {
      const source = this.#scripts.get(`${prefix}/${transfer.fromScript}`);
      if (source === undefined) continue;
      const classes = new Set(source.classes);
      classes.delete(transfer.from);
      this.#scripts.set(`${prefix}/${transfer.fromScript}`, { ...source, classes });
    }
  }

  #details(key: string, script: string, namespace: string): Json {
    const stored = this.#existing(key);
    return {
      created_on: stored.createdOn,
      modified_on: stored.modifiedOn,
      dispatch_namespace: namespace,
      script: scriptObject(script, stored),
    };
  }

  #delete(key: string, url: URL): Json {
    const stored = this.#existing(key);
    if (stored.classes.size > 0 && url.searchParams.get("force") !== "true") {
      throw invalid(
        `This script has Durable Object classes (${[...stored.classes].join(", ")}); deleting it destroys their storage, pass force=true (fake)`,
      );
    }
    this.#scripts.delete(key);
    return null;
  }

  async #patchSettings(key: string, request: IncomingMessage, body: Buffer): Promise<Json> {
    const stored = this.#existing(key);
    const form = await readForm(request, body);
    const settings = await jsonPart(form, "settings");
    // Settings may carry migrations too (SettingEditParams.settings.migrations).
    const migrated = applyMigrations(settings.migrations, stored.migrationTag, stored.classes, {
      legacy10079: this.#legacy10079.has(key.slice(key.lastIndexOf("/") + 1)),
    });
    const bindings =
      settings.bindings === undefined
        ? stored.bindings
        : inheritBindings(parseBindings(settings.bindings), stored.bindings);
    checkDurableObjectBindings(bindings, migrated.classes);
    const compatibilityDate = optionalString(settings, "compatibility_date", "settings");
    const updated: StoredScript = {
      ...stored,
      bindings,
      migrationTag: migrated.tag,
      classes: migrated.classes,
      compatibilityDate: compatibilityDate ?? stored.compatibilityDate,
      tailConsumers:
        settings.tail_consumers === undefined
          ? stored.tailConsumers
          : this.#tailConsumers(key, settings.tail_consumers, "settings"),
      compatibilityFlags:
        settings.compatibility_flags === undefined
          ? stored.compatibilityFlags
          : stringArray(settings, "compatibility_flags", "settings"),
      modifiedOn: now(),
    };
    this.#scripts.set(key, updated);
    return settingsOf(updated);
  }

  /**
   * The Analytics Engine SQL API, for the query shape Shipyard sends: bearer token, a known
   * dataset, a window in hours. Answers like the real API: JSON `{meta, data, rows}` with numbers
   * as JSON numbers; errors as plain text with a 4xx status. Faults apply as for the other routes.
   */
  #analyticsSql(method: string, request: IncomingMessage, body: Buffer, response: ServerResponse): number {
    // Faults for this route are addressed to the pseudo-script ANALYTICS_ENGINE_SCRIPT, so they
    // never collide with the script tests running at the same time against the same fake.
    const fault = this.#takeFault(ANALYTICS_ENGINE_SCRIPT);
    if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { "retry-after": fault.retryAfter };
      response.writeHead(fault.status, { "content-type": "text/plain", ...headers });
      response.end("Injected fault (fake)");
      return fault.status;
    }
    const fail = (status: number, message: string): number => {
      response.writeHead(status, { "content-type": "text/plain" });
      response.end(message);
      return status;
    };
    if (request.headers.authorization !== `Bearer ${this.#token}`) return fail(401, "Authentication error");
    if (method !== "POST") return fail(405, "method not allowed");
    const sql = body.toString("utf8").trim();
    const query = AE_USAGE_QUERY.exec(sql);
    if (!query) return fail(422, `unsupported query (fake): ${sql.slice(0, 200)}`);
    const [, dataset, hours, project] = query;
    if (dataset !== AE_DATASET) return fail(422, `unknown table ${dataset ?? ""}`);
    const since = Date.now() - Number(hours) * 3_600_000;
    const totals = new Map<string, { wall: number; invocations: number }>();
    for (const point of this.#points) {
      if ((point.timestamp ?? Date.now()) <= since) continue;
      if (project !== undefined && point.project !== project) continue;
      const weight = point.sampleInterval ?? 1;
      const total = totals.get(point.project) ?? { wall: 0, invocations: 0 };
      total.wall += point.wallMs * weight;
      total.invocations += weight;
      totals.set(point.project, total);
    }
    const data = [...totals].map(([projectId, total]) => ({
      project_id: projectId,
      wall_ms: total.wall,
      invocations: total.invocations,
    }));
    return send(response, 200, {
      meta: [
        { name: "project_id", type: "String" },
        { name: "wall_ms", type: "Float64" },
        { name: "invocations", type: "UInt64" },
      ],
      data,
      rows: data.length,
      rows_before_limit_at_least: data.length,
    });
  }

  #control(method: string, url: URL, body: Buffer, response: ServerResponse): void {
    if (method === "GET" && url.pathname === "/__control/requests") {
      const script = url.searchParams.get("script");
      send(
        response,
        200,
        this.#log.filter((entry) => script === null || entry.script === script),
      );
      return;
    }
    if (method === "GET" && url.pathname.startsWith("/__control/scripts/")) {
      const name = decodeURIComponent(url.pathname.slice("/__control/scripts/".length));
      // `?account=&namespace=` narrow it to one namespace (the dispatch namespace double does).
      const prefix = `${url.searchParams.get("account") ?? ""}/${url.searchParams.get("namespace") ?? ""}/`;
      const found = [...this.#scripts].find(
        ([key]) => key.endsWith(`/${name}`) && (prefix === "//" || key === `${prefix}${name}`),
      )?.[1];
      if (found === undefined) {
        send(response, 404, { error: "no such script" });
        return;
      }
      send(response, 200, {
        main_module: found.mainModule,
        compatibility_date: found.compatibilityDate,
        compatibility_flags: found.compatibilityFlags,
        classes: [...found.classes],
        bindings: found.bindings,
        assets: found.assets,
        tail_consumers: found.tailConsumers,
        modules: [...found.modules].map(([moduleName, module]) => ({
          name: moduleName,
          content_type: module.contentType,
          size: module.bytes.byteLength,
          text:
            module.contentType.startsWith("application/javascript") || module.contentType === "text/plain"
              ? new TextDecoder().decode(module.bytes)
              : null,
          bytes: Array.from(module.bytes.subarray(0, 16)),
        })),
      });
      return;
    }
    if (method === "POST" && url.pathname === "/__control") {
      const command = parseControl(body.toString("utf8"));
      if (command === undefined) {
        send(response, 400, { error: "expected a ControlCommand" });
        return;
      }
      if (command.action === "ae_points") {
        this.#points.push(...command.points);
      } else if (command.action === "legacy_10079") {
        this.#legacy10079.add(command.script);
      } else if (command.action === "namespace") {
        this.#namespaces.add(`${command.account}/${command.namespace}`);
      } else if (command.action === "reset") {
        this.#legacy10079.clear();
        this.#namespaces.clear();
        this.#points = [];
        this.#faults = [];
        this.#log = [];
        this.#scripts.clear();
        this.#assetBlobs.clear();
        this.#assetSessions.clear();
        this.#assetCompletions.clear();
      } else {
        this.#faults.push(command);
      }
      send(response, 200, { ok: true });
      return;
    }
    send(response, 404, { error: "unknown control endpoint" });
  }
}

function parseControl(text: string): ControlCommand | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  if (value.action === "reset") return { action: "reset" };
  if (value.action === "legacy_10079" && typeof value.script === "string") {
    return { action: "legacy_10079", script: value.script };
  }
  if (value.action === "namespace" && typeof value.account === "string" && typeof value.namespace === "string") {
    return { action: "namespace", account: value.account, namespace: value.namespace };
  }
  if (value.action === "ae_points") {
    const points = value.points;
    if (!Array.isArray(points)) return undefined;
    const parsed: UsagePoint[] = [];
    for (const point of points) {
      if (!isObject(point)) return undefined;
      const { project, className, handler, wallMs, timestamp, sampleInterval } = point;
      if (typeof project !== "string" || typeof className !== "string" || typeof handler !== "string") return undefined;
      if (typeof wallMs !== "number") return undefined;
      parsed.push({
        project,
        className,
        handler,
        wallMs,
        ...(typeof timestamp === "number" ? { timestamp } : {}),
        ...(typeof sampleInterval === "number" ? { sampleInterval } : {}),
      });
    }
    return { action: "ae_points", points: parsed };
  }
  const { status, count, retryAfter, script } = value;
  if (value.action !== "fail" || typeof status !== "number" || typeof count !== "number") return undefined;
  if (retryAfter !== undefined && typeof retryAfter !== "string") return undefined;
  if (script !== undefined && typeof script !== "string") return undefined;
  return {
    action: "fail",
    status,
    count,
    ...(retryAfter === undefined ? {} : { retryAfter }),
    ...(script === undefined ? {} : { script }),
  };
}

function tailConsumersJson(consumers: readonly TailConsumer[]): JsonObject[] {
  return consumers.map((consumer) => ({ ...consumer }));
}

/** The `Script` object of the real API (workers/scripts Script), as far as the fake knows it. */
function scriptObject(script: string, stored: StoredScript): JsonObject {
  return {
    id: script,
    etag: stored.etag,
    created_on: stored.createdOn,
    modified_on: stored.modifiedOn,
    compatibility_date: stored.compatibilityDate,
    compatibility_flags: stored.compatibilityFlags,
    has_modules: true,
    handlers: ["fetch"],
    usage_model: "standard",
    // Absent, like the real API, until a migration has set one.
    ...(stored.migrationTag === null ? {} : { migration_tag: stored.migrationTag }),
    tail_consumers: stored.tailConsumers.length === 0 ? null : tailConsumersJson(stored.tailConsumers),
  };
}

function settingsOf(stored: StoredScript): JsonObject {
  return {
    // The API never returns a secret's value: a secret_text binding comes back as its type and name.
    bindings: stored.bindings.map((binding) =>
      binding.type === "secret_text" ? { type: "secret_text", name: binding.name ?? "" } : binding,
    ),
    compatibility_date: stored.compatibilityDate,
    compatibility_flags: stored.compatibilityFlags,
    logpush: false,
    tags: [],
    tail_consumers: stored.tailConsumers.length === 0 ? null : tailConsumersJson(stored.tailConsumers),
    usage_model: "standard",
  };
}

/** The `script` of D1 and KV API requests in the fake's log and fault filters: `d1:<account>`. */
function d1Subject(groups: Record<string, string | undefined>): string {
  return `d1:${groups["account"] ?? ""}`;
}

function ok(result: Json): Json {
  return { success: true, errors: [], messages: [], result };
}

function envelopeError(code: number, message: string): Json {
  return { success: false, errors: [{ code, message }], messages: [], result: null };
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
  return status;
}
