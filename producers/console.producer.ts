import { CONSOLE_SECURITY_HEADERS } from "../lib/console-headers.ts";
import { MethodNotAllowed, NotFound } from "./errors.ts";

/**
 * `GET /console` and `/console/*`: the on-call console (console/, built into console/dist by
 * `npm run console:build`), served from Workers static assets through the Worker so every answer
 * carries the security headers below. The console is a client of the admin API and nothing else.
 */

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
  for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) response.headers.set(name, value);
  if (url.pathname === "/console/") response.headers.set("Cache-Control", "no-cache");
  return response;
}
