import { type IRequest, Router } from "itty-router";
import { serveConsole } from "./console.producer.ts";
import { MethodNotAllowed, NotFound, toErrorResponse } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { dispatchTenant, dispatchTenantHost } from "./tenant.producer.ts";
import { ok } from "./responses.ts";
import { authenticate } from "./auth.ts";
import type { Method } from "./handler.ts";
import { withAuthFailureLimit } from "./auth-failures.ts";
import { clientSource } from "./client-address.ts";
import { withRateLimit } from "./rate-limit.middleware.ts";
import { ROUTES, type RouteSpec } from "./routes.ts";

type Args = [Env, ExecutionContext];
type Endpoint = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;

/**
 * A route as the router runs it: authenticate as the route declares (401/403 before anything
 * else), count the request against its rate limit (by the principal, or the client address on
 * unauthenticated routes), then call the handler with the principal.
 */
function endpoint(route: RouteSpec): Endpoint {
  const limit = route.rateLimit;
  const limited = (
    request: Request,
    env: Env,
    ctx: ExecutionContext,
    identifier: string,
    run: () => Promise<Response> | Response,
  ) => (limit === undefined ? run() : withRateLimit(env, ctx, limit, identifier, request, run));
  let serve: Endpoint;
  if (route.auth === "none") {
    const { handler } = route;
    serve = (request, env, ctx) =>
      limited(request, env, ctx, clientSource(request, env), () => handler(request, env, ctx, null));
  } else {
    const { auth, handler } = route;
    serve = async (request, env, ctx) => {
      const principal = await authenticate(request, env, auth);
      return limited(request, env, ctx, principal.id, () => handler(request, env, ctx, principal));
    };
  }
  // Routes that check a credential or a signature (the ones that can answer 401) count their
  // failures per source, and refuse a source over its budget before comparing anything.
  if (route.auth === "none" && !route.errors?.includes(401)) return serve;
  return (request, env, ctx) => withAuthFailureLimit(env, clientSource(request, env), () => serve(request, env, ctx));
}

const LOWER = { GET: "get", POST: "post", PUT: "put", PATCH: "patch", DELETE: "delete" } as const satisfies Record<
  Method,
  string
>;

/**
 * The HTTP edge. Every endpoint comes from the route table (producers/routes.ts); any other method
 * on a known path is 405 with `Allow`, an unknown path 404. Each route is authenticated and rate
 * limited here, as the table declares (`endpoint`; the limit is producers/rate-limit.middleware.ts).
 * Errors of every kind become the
 * contract's JSON in the router's one `catch`.
 */
export function createRouter(routes: readonly RouteSpec[] = ROUTES) {
  const router = Router<IRequest, Args>({
    catch: (error, request) => toErrorResponse(error, request),
  });
  const document = openApiDocument(routes);
  // A tenant's own origin (`<project>.localhost`) comes before every API route; other hosts fall through.
  router.all("*", dispatchTenantHost);
  router.get("/v1/openapi.json", () => ok(document));

  // The document's path is a known path too: another method on it is 405, not 404.
  const allowedByPath = new Map<string, Method[]>([["/v1/openapi.json", ["GET"]]]);
  for (const route of routes) {
    router[LOWER[route.method]](route.path, endpoint(route));
    allowedByPath.set(route.path, [...(allowedByPath.get(route.path) ?? []), route.method]);
  }
  for (const [path, allowed] of allowedByPath) {
    router.all(path, (request) => {
      throw new MethodNotAllowed(request.method, allowed);
    });
  }
  // The on-call console (static assets, producers/console.producer.ts).
  router.all("/console", serveConsole);
  router.all("/console/*", serveConsole);
  // Tenant traffic: every method, any path below the project.
  router.all("/t/:project", dispatchTenant);
  router.all("/t/:project/*", dispatchTenant);
  router.all("*", (request) => {
    throw new NotFound(`no route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return router;
}
