/**
 * What crosses between a caller, Shipyard and a tenant's Worker. Under `/t/<project>/` the tenant
 * shares Shipyard's origin, so everything a browser or client attaches for that origin is meant
 * for Shipyard: the tenant gets neither `Authorization` (possibly the admin token) nor `Cookie`,
 * and its `Set-Cookie` is dropped (a cookie set there would apply to Shipyard's origin, and a
 * `Path` is no boundary between same-origin pages). On its own origin (`<project>.localhost`) the
 * tenant's cookies and authorization are its own; only a Shipyard credential sent there is removed.
 */
import { carriesShipyardCredential } from "./auth.ts";

/** The request a tenant under Shipyard's origin (`/t/<project>/…`) may see. */
export function forShipyardOriginTenant(request: Request): Request {
  const forwarded = new Request(request);
  forwarded.headers.delete("authorization");
  forwarded.headers.delete("cookie");
  return forwarded;
}

/** The request a tenant on its own origin may see: without a Shipyard ingest key or admin token. */
export async function forOwnOriginTenant(request: Request, env: Env): Promise<Request> {
  if (!(await carriesShipyardCredential(request, env))) return request;
  const forwarded = new Request(request);
  forwarded.headers.delete("authorization");
  return forwarded;
}

/** A tenant's answer under Shipyard's origin, without any `Set-Cookie`. */
export function withoutSetCookie(response: Response): Response {
  if (!response.headers.has("set-cookie")) return response;
  const headers = new Headers(response.headers);
  headers.delete("set-cookie");
  // A WebSocket upgrade keeps its socket; any other answer keeps its body and status.
  if (response.webSocket) return new Response(null, { status: 101, webSocket: response.webSocket, headers });
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
