import type { CredentialKind } from "../schemas/api.ts";
import { Forbidden, Unauthorized } from "./errors.ts";
import { SESSION_COOKIE, checkCsrf, readCookie, verifySession } from "./session.ts";

/**
 * Bearer credentials. Two kinds: ingest keys (`INGEST_KEYS`, comma separated; producers) and the
 * admin token (`ADMIN_TOKEN`; on-call and deploy management). Presenting one kind where the other
 * is required is 403, presenting nothing or an unknown credential is 401.
 */
export type { CredentialKind };

export interface Principal {
  kind: CredentialKind;
  /**
   * Stable identifier for rate limiting and audit; never the secret itself:
   * `key:<fingerprint>` for an ingest key, `admin:<fingerprint>` for the admin token.
   */
  id: string;
  /** How the credential came: the Authorization header, or the console's session cookie. */
  via?: "bearer" | "session";
}

interface AuthEnv {
  INGEST_KEYS?: string;
  ADMIN_TOKEN?: string;
}

const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/**
 * Constant-time equality. Both sides are hashed first so the comparison always runs over 32
 * bytes: neither the content nor the length of the secret leaks through timing.
 */
export async function timingSafeEqualStrings(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([digest(a), digest(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

function bearer(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

function splitKeys(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
}

/** The first 16 hex digits (64 bits) of a SHA-256. */
function fingerprintOf(sha256: ArrayBuffer): string {
  const bytes = new Uint8Array(sha256, 0, 8);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * A credential's stable, non-secret identity: the first 16 hex digits (64 bits) of its SHA-256.
 * Derived from the credential itself, not its position in `INGEST_KEYS`, so reordering the list
 * (or adding a key) does not hand one key's rate-limit window and audit trail to another.
 * Credentials are random secrets, so the truncated hash reveals nothing usable about them.
 */
export async function credentialFingerprint(secret: string): Promise<string> {
  return fingerprintOf(await digest(secret));
}

/** A configured secret's SHA-256 and the principal it stands for. */
interface Secret {
  sha256: ArrayBuffer;
  principal: Principal;
}

/** Every configured secret, hashed once per configuration. */
interface Configured {
  ingest: Secret[];
  admin: Secret | null;
}

/**
 * Per isolate, keyed by the configuration strings themselves (not the env object, which tests and
 * `--var` runs vary): the configured secrets are hashed once, not on every request. Bounded, since
 * a test suite drives many configurations through one isolate.
 */
const configuredCache = new Map<string, Promise<Configured>>();
const CONFIGURED_CACHE_MAX = 16;
/** The last configuration seen: in production every request has the same one. */
let last: { ingestKeys?: string; adminToken?: string; configured: Promise<Configured> } | null = null;

async function secret(kind: CredentialKind, value: string): Promise<Secret> {
  const sha256 = await digest(value);
  const principal: Principal = {
    kind,
    id: `${kind === "admin" ? "admin" : "key"}:${fingerprintOf(sha256)}`,
    via: "bearer",
  };
  // Shared by every request that presents this secret: frozen, so no handler can change another's.
  return { sha256, principal: Object.freeze(principal) };
}

function configured(env: AuthEnv): Promise<Configured> {
  if (last && last.ingestKeys === env.INGEST_KEYS && last.adminToken === env.ADMIN_TOKEN) return last.configured;
  const cacheKey = `${env.INGEST_KEYS ?? ""}\u0000${env.ADMIN_TOKEN ?? ""}`;
  let hit = configuredCache.get(cacheKey);
  if (!hit) {
    const adminToken = env.ADMIN_TOKEN;
    hit = Promise.all([
      Promise.all(splitKeys(env.INGEST_KEYS).map((key) => secret("ingest", key))),
      adminToken ? secret("admin", adminToken) : Promise.resolve(null),
    ]).then(([ingest, admin]) => ({ ingest, admin }));
    if (configuredCache.size >= CONFIGURED_CACHE_MAX) configuredCache.clear();
    configuredCache.set(cacheKey, hit);
  }
  last = { ingestKeys: env.INGEST_KEYS, adminToken: env.ADMIN_TOKEN, configured: hit };
  return hit;
}

/**
 * Which kind of credential `token` is: its SHA-256 (one per request) compared in constant time
 * against every configured secret's (cached), with no early exit, so timing reveals neither
 * which secret matched nor how much of one did.
 */
async function classify(token: string, env: AuthEnv): Promise<Principal | null> {
  const [presented, secrets] = await Promise.all([digest(token), configured(env)]);
  let match: Principal | null = null;
  for (const key of secrets.ingest) {
    if (crypto.subtle.timingSafeEqual(presented, key.sha256) && match === null) match = key.principal;
  }
  if (secrets.admin && crypto.subtle.timingSafeEqual(presented, secrets.admin.sha256)) match = secrets.admin.principal;
  return match;
}

/**
 * Whether the request's bearer credential is one of Shipyard's (an ingest key or the admin token),
 * compared in constant time: such a header is meant for Shipyard, never for a tenant it forwards to.
 */
export async function carriesShipyardCredential(request: Request, env: AuthEnv): Promise<boolean> {
  const token = bearer(request);
  return token !== null && (await classify(token, env)) !== null;
}

/**
 * One classification per request: the rate limiter (producers/rate-limit.middleware.ts) authenticates before
 * the handler does, and the handler's own `authenticate` call then costs nothing.
 */
const classified = new WeakMap<Request, Promise<Principal | null>>();

/**
 * The console's session cookie (producers/session.ts) as the admin token: the same principal as the
 * bearer token, so rate limits and the audit trail see one admin. A state change also needs the
 * CSRF check. Null when the request carries no session cookie.
 */
async function sessionPrincipal(request: Request, env: AuthEnv): Promise<Principal | null> {
  const cookie = readCookie(request, SESSION_COOKIE);
  if (cookie === null) return null;
  if (!env.ADMIN_TOKEN || (await verifySession(cookie, env.ADMIN_TOKEN)) === null) {
    throw new Unauthorized("the console session has expired or is not valid; sign in again");
  }
  checkCsrf(request);
  return { kind: "admin", id: `admin:${await credentialFingerprint(env.ADMIN_TOKEN)}`, via: "session" };
}

/**
 * Authenticates the request as `required`, or throws 401/403. Admin routes also take the
 * console's session cookie when there is no Authorization header.
 */
export async function authenticate(request: Request, env: AuthEnv, required: CredentialKind): Promise<Principal> {
  const token = bearer(request);
  if (!token && required === "admin") {
    const session = await sessionPrincipal(request, env);
    if (session) return session;
  }
  if (!token) throw new Unauthorized("missing Authorization: Bearer credential");
  let pending = classified.get(request);
  if (!pending) {
    pending = classify(token, env);
    classified.set(request, pending);
  }
  const principal = await pending;
  if (!principal) throw new Unauthorized("unknown credential");
  if (principal.kind !== required) {
    throw new Forbidden(
      `this endpoint needs the ${required === "admin" ? "admin token" : "an ingest key"}, not ${
        principal.kind === "admin" ? "the admin token" : "an ingest key"
      }`,
    );
  }
  return principal;
}
