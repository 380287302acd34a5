import { CSRF_HEADER } from "../schemas/session.schema.ts";
import { HttpError } from "./errors.ts";

/**
 * The on-call console's session cookie: one more way to present the admin token (docs/console.md).
 * `POST /v1/admin/session` exchanges the token for it (producers/session.producer.ts); `authenticate`
 * (producers/auth.ts) accepts it for admin routes, and for a state change only with the CSRF check.
 *
 * The cookie holds no secret: `v1.<expires ms>.<hex HMAC-SHA256(ADMIN_TOKEN, "shipyard-console-session.v1.<expires ms>")>`.
 * Why signed and not the token itself: a cookie that leaks (a proxy log, a saved HAR) is worth at
 * most its remaining lifetime, never the token; rotating `ADMIN_TOKEN` ends every session at once.
 */

/** Plain name, not `__Host-`: the console must work on http://127.0.0.1 during development too. */
export const SESSION_COOKIE = "shipyard_session";

/** How long a console session lasts: one on-call shift. */
export const SESSION_TTL_MS = 8 * 3_600_000;

const VERSION = "v1";
const encoder = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function mac(secret: string, expiresAt: number): Promise<ArrayBuffer> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", key, encoder.encode(`shipyard-console-session.${VERSION}.${expiresAt}`));
}

/** A new session value that expires at `expiresAt` (epoch ms). */
export async function signSession(secret: string, expiresAt: number): Promise<string> {
  return `${VERSION}.${expiresAt}.${hex(await mac(secret, expiresAt))}`;
}

/**
 * The session's expiry if `value` is a valid, unexpired session signed with `secret`, else null.
 * The signature is compared in constant time (both sides are MACs of the same length).
 */
export async function verifySession(value: string, secret: string, now: number = Date.now()): Promise<number | null> {
  const match = /^v1\.(\d{1,15})\.([0-9a-f]{64})$/.exec(value);
  if (!match?.[1] || !match[2]) return null;
  const expiresAt = Number(match[1]);
  // A session never lasts longer than it can be issued for, whatever its expiry says.
  if (expiresAt <= now || expiresAt > now + SESSION_TTL_MS) return null;
  const presented = encoder.encode(match[2]);
  const expected = encoder.encode(hex(await mac(secret, expiresAt)));
  return crypto.subtle.timingSafeEqual(presented, expected) ? expiresAt : null;
}

/** The value of cookie `name` in the request's `Cookie` header, if any. */
export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** `Set-Cookie` for a session value (or, with `null`, the header that clears it). */
export function sessionCookieHeader(value: string | null, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value ?? ""}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${value === null ? 0 : maxAgeSeconds}`;
}

/** A request that only reads: the CSRF check does not apply (these routes change nothing). */
function isSafeMethod(method: string): boolean {
  return method === "GET" || method === "HEAD";
}

/**
 * 403 `csrf_rejected` when the request carries an `Origin` other than its own. Browsers send
 * `Origin` on every cross-origin POST and DELETE, so a page elsewhere is always refused; a client
 * that is not a browser (curl, the CLI) sends none and is not a CSRF vector.
 */
export function checkOrigin(request: Request): void {
  const origin = request.headers.get("origin");
  const own = new URL(request.url).origin;
  if (origin !== null && origin !== own) {
    throw new HttpError(403, "csrf_rejected", `a state change from a browser must come from ${own}, not ${origin}`);
  }
}

/**
 * 403 `csrf_rejected` unless a cookie-authenticated state change comes from Shipyard's own pages:
 * the `Origin` header must be this request's origin and the CSRF header must be present.
 * SameSite=Strict already keeps the cookie off cross-site requests; this also refuses a sibling
 * site on the same registrable domain (same-site, different origin) and a browser without SameSite.
 */
export function checkCsrf(request: Request): void {
  if (isSafeMethod(request.method)) return;
  if (request.headers.get("origin") === null) {
    throw new HttpError(403, "csrf_rejected", "a state change with the session cookie needs an Origin header");
  }
  checkOrigin(request);
  if (request.headers.get(CSRF_HEADER) !== "1") {
    throw new HttpError(
      403,
      "csrf_rejected",
      `a state change with the session cookie needs the ${CSRF_HEADER}: 1 header`,
    );
  }
}
