import { type IRequest, Router } from "itty-router";
import { MethodNotAllowed, NotFound, toErrorResponse } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { dispatchTenant } from "./tenant.producer.ts";
import { ok } from "./responses.ts";
import { withRateLimit } from "./rate-limit.middleware.ts";
import { type Method, ROUTES, type RouteSpec } from "./routes.ts";

type Args = [Env, ExecutionContext];

const LOWER = { GET: "get", POST: "post", PUT: "put", PATCH: "patch", DELETE: "delete" } as const satisfies Record<
  Method,
  string
>;

/**
 * The HTTP edge. Every endpoint comes from the route table (producers/routes.ts); any other method
 * on a known path is 405 with `Allow`, an unknown path 404. Routes with `rateLimit` are wrapped
 * by `withRateLimit` (producers/rate-limit.middleware.ts). Errors of every kind become the
 * contract's JSON in the router's one `catch`.
 */
export function createRouter(routes: readonly RouteSpec[] = ROUTES) {
  const router = Router<IRequest, Args>({
    catch: (error, request) => toErrorResponse(error, request),
  });
  const document = openApiDocument(routes);
  router.get("/v1/openapi.json", () => ok(document));

  // The document's path is a known path too: another method on it is 405, not 404.
  const allowedByPath = new Map<string, Method[]>([["/v1/openapi.json", ["GET"]]]);
  for (const route of routes) {
    const handler = route.rateLimit ? withRateLimit(route.rateLimit, route.auth, route.handler) : route.handler;
    router[LOWER[route.method]](route.path, handler);
    allowedByPath.set(route.path, [...(allowedByPath.get(route.path) ?? []), route.method]);
  }
  for (const [path, allowed] of allowedByPath) {
    router.all(path, (request) => {
      throw new MethodNotAllowed(request.method, allowed);
    });
  }
  // Tenant traffic: every method, any path below the project.
  router.all("/t/:project", dispatchTenant);
  router.all("/t/:project/*", dispatchTenant);
  router.all("*", (request) => {
    throw new NotFound(`no route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return router;
}
