import { MethodNotAllowed, NotFound } from "./errors.ts";

/**
 * `GET /console` and `/console/*`: the on-call console (console/, built into console/dist by
 * `npm run console:build`), served from Workers static assets through the Worker so every answer
 * carries the security headers below. The console is a client of the admin API and nothing else.
 */

/**
 * Only the console's own files, no inline script or style, no framing, nothing but this origin
 * to talk to; Trusted Types leave no string-to-DOM sink open even to a bug in the page.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONSOLE_CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

/** Serves one console file (the app's page for `/console` itself) with the security headers. */
export async function serveConsole(request: Request, env: Env): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD")
    throw new MethodNotAllowed(request.method, ["GET", "HEAD"]);
  const url = new URL(request.url);
  // `/console` is the app itself, not a redirect to `/console/`: the page's asset URLs are absolute.
  if (url.pathname === "/console") url.pathname = "/console/";
  const asset = await env.ASSETS.fetch(new Request(url, request));
  if (asset.status === 404) throw new NotFound(`no console file ${url.pathname}`);
  const response = new Response(asset.body, asset);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  if (url.pathname === "/console/") response.headers.set("Cache-Control", "no-cache");
  return response;
}
