import type { Principal } from "./auth.ts";

export type { Method } from "../schemas/api.ts";

/**
 * An endpoint's code. The router has already authenticated the request as the route declares
 * (`auth` in producers/routes.ts) and counted it against its rate limit; the handler receives who
 * is calling (`null` on routes with `auth: "none"`) and never checks credentials again.
 */
export type Handler<P extends Principal | null = Principal> = (
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  principal: P,
) => Promise<Response> | Response;
