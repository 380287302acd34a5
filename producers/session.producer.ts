import { audit } from "../lib/audit.d1.ts";
import { log } from "../lib/log.ts";
import { type Session, SessionRequestSchema } from "../schemas/session.schema.ts";
import { type Principal, credentialFingerprint, timingSafeEqualStrings } from "./auth.ts";
import { Unauthorized } from "./errors.ts";
import { readJson } from "./http.ts";
import { ok } from "./responses.ts";
import {
  SESSION_COOKIE,
  SESSION_TTL_MS,
  checkCsrf,
  checkOrigin,
  readCookie,
  sessionCookieHeader,
  signSession,
  verifySession,
} from "./session.ts";

/**
 * The on-call console's sign-in and sign-out (producers/session.ts has the cookie and the CSRF
 * rules). Signing in is trading the admin token for an `HttpOnly; Secure; SameSite=Strict` cookie
 * the page's scripts cannot read; every later request goes through the same admin routes.
 */

/**
 * `POST /v1/admin/session` body `{"token"}` → 200 with the session cookie. The Origin check runs
 * before the token does, so a cross-site page cannot even probe tokens (nor sign a victim in as
 * someone else); a wrong token is 401, rate limited per client address like every route without
 * a credential.
 */
export async function postSession(request: Request, env: Env): Promise<Response> {
  checkOrigin(request);
  const { body } = await readJson(request, SessionRequestSchema);
  if (!env.ADMIN_TOKEN || !(await timingSafeEqualStrings(body.token, env.ADMIN_TOKEN))) {
    log.warn("console_sign_in_refused", {});
    throw new Unauthorized("that is not the admin token");
  }
  const expiresAt = Date.now() + SESSION_TTL_MS;
  const principal = `admin:${await credentialFingerprint(env.ADMIN_TOKEN)}`;
  await audit(env.DB, { type: "session.created", actor: principal, details: { expires_at: expiresAt } });
  return ok({ principal, via: "session", expires_at: expiresAt } satisfies Session, {
    "Set-Cookie": sessionCookieHeader(await signSession(env.ADMIN_TOKEN, expiresAt), SESSION_TTL_MS / 1000),
  });
}

/** `GET /v1/admin/session` (admin): who is signed in and until when (the console asks on load). */
export async function getSession(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const cookie = principal.via === "session" ? readCookie(request, SESSION_COOKIE) : null;
  const expiresAt = cookie !== null && env.ADMIN_TOKEN ? await verifySession(cookie, env.ADMIN_TOKEN) : null;
  return ok({
    principal: principal.id,
    via: principal.via ?? "bearer",
    expires_at: expiresAt,
  } satisfies Session);
}

/**
 * `DELETE /v1/admin/session` → 200 and the cookie cleared. Works without a valid session (signing
 * out must never fail), but a request carrying the cookie passes the CSRF check first, so another
 * site cannot sign the on-call engineer out. Audited when it ended a valid session.
 */
export async function deleteSession(request: Request, env: Env): Promise<Response> {
  const cookie = readCookie(request, SESSION_COOKIE);
  if (cookie !== null) checkCsrf(request);
  const valid = cookie !== null && !!env.ADMIN_TOKEN && (await verifySession(cookie, env.ADMIN_TOKEN)) !== null;
  if (valid && env.ADMIN_TOKEN) {
    await audit(env.DB, { type: "session.ended", actor: `admin:${await credentialFingerprint(env.ADMIN_TOKEN)}` });
  }
  return ok(
    { signed_out: valid },
    {
      "Set-Cookie": sessionCookieHeader(null, 0),
    },
  );
}
