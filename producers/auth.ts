import { Forbidden, Unauthorized } from "./errors.ts";

/**
 * Bearer credentials. Two kinds: ingest keys (`INGEST_KEYS`, comma separated; producers) and the
 * admin token (`ADMIN_TOKEN`; on-call and deploy management). Presenting one kind where the other
 * is required is 403, presenting nothing or an unknown credential is 401.
 */
export type CredentialKind = "ingest" | "admin";

export interface Principal {
  kind: CredentialKind;
  /**
   * Stable identifier for rate limiting and audit; never the secret itself:
   * `key:<fingerprint>` for an ingest key, `admin:<fingerprint>` for the admin token.
   */
  id: string;
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

/**
 * A credential's stable, non-secret identity: the first 16 hex digits (64 bits) of its SHA-256.
 * Derived from the credential itself, not its position in `INGEST_KEYS`, so reordering the list
 * (or adding a key) does not hand one key's rate-limit window and audit trail to another.
 * Credentials are random secrets, so the truncated hash reveals nothing usable about them.
 */
export async function credentialFingerprint(secret: string): Promise<string> {
  const bytes = new Uint8Array(await digest(secret)).subarray(0, 8);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Which kind of credential `token` is, comparing against every configured secret in constant time. */
async function classify(token: string, env: AuthEnv): Promise<Principal | null> {
  let kind: CredentialKind | null = null;
  const ingestKeys = splitKeys(env.INGEST_KEYS);
  // Compare against every key (no early exit) so timing does not reveal which one matched.
  for (const key of ingestKeys) {
    if ((await timingSafeEqualStrings(token, key)) && kind === null) kind = "ingest";
  }
  if (env.ADMIN_TOKEN && (await timingSafeEqualStrings(token, env.ADMIN_TOKEN))) kind = "admin";
  if (kind === null) return null;
  return { kind, id: `${kind === "admin" ? "admin" : "key"}:${await credentialFingerprint(token)}` };
}

/**
 * One classification per request: the rate limiter (producers/rate-limit.middleware.ts) authenticates before
 * the handler does, and the handler's own `authenticate` call then costs nothing.
 */
const classified = new WeakMap<Request, Promise<Principal | null>>();

/** Authenticates the request as `required`, or throws 401/403. */
export async function authenticate(request: Request, env: AuthEnv, required: CredentialKind): Promise<Principal> {
  const token = bearer(request);
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
