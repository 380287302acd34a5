import { type IRequest, Router } from "itty-router";
import { MethodNotAllowed, NotFound, toErrorResponse } from "./errors.ts";
import { postEvents } from "./events.producer.ts";
import { getHealth } from "./health.producer.ts";
import { getMetrics } from "./metrics.producer.ts";

type Args = [Env, ExecutionContext];
type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
type Method = (typeof METHODS)[number];
const LOWER = { GET: "get", POST: "post", PUT: "put", PATCH: "patch", DELETE: "delete" } as const;

/**
 * The HTTP edge. Each path is declared once with its methods; any other method on a known path is
 * 405 with `Allow`, an unknown path 404. Errors of every kind become the contract's JSON in the
 * router's one `catch`.
 */
export function createRouter() {
  const router = Router<IRequest, Args>({
    catch: (error, request) => toErrorResponse(error, request),
  });

  const route = (path: string, handlers: Partial<Record<Method, Handler>>) => {
    const allowed = METHODS.filter((method) => handlers[method]);
    for (const method of allowed) {
      const handler = handlers[method];
      if (handler) router[LOWER[method]](path, handler);
    }
    router.all(path, (request) => {
      throw new MethodNotAllowed(request.method, allowed);
    });
  };

  route("/v1/health", { GET: getHealth });
  route("/v1/events", { POST: postEvents });
  route("/v1/admin/metrics", { GET: getMetrics });

  router.all("*", (request) => {
    throw new NotFound(`no route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return router;
}
