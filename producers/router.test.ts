import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { ErrorSchema } from "../schemas/http.schema.ts";
import { ROUTES } from "./routes.ts";

const BASE_URL = "http://shipyard.test";
/** From vitest.config.ts (TEST_SECRETS). */
const CREDENTIALS = { ingest: "dev-ingest-key", admin: "dev-admin-token" } as const;

/** A concrete URL for a route pattern: every `:param` becomes a plausible value. */
function urlOf(path: string): string {
  return BASE_URL + path.replaceAll(/:(\w+)/g, (_, name: string) => `${name}-1`);
}

async function call(method: string, path: string, authorization: string | null): Promise<Response> {
  const headers = new Headers({ "content-type": "application/json" });
  if (authorization !== null) headers.set("authorization", authorization);
  const body = method === "GET" || method === "DELETE" ? undefined : "{}";
  return exports.default.fetch(new Request(urlOf(path), { method, headers, body }));
}

/**
 * The router, not the handlers, authenticates: every route that declares a credential refuses a
 * request without one (401), with the other kind (403) and with an unknown one (401), before its
 * handler reads the body or touches a binding.
 */
describe("every authenticated route in the table", () => {
  const guarded = ROUTES.filter((route) => route.auth !== "none");

  it("covers the table", ({ expect }) => {
    expect(guarded.length).toBeGreaterThan(20);
  });

  for (const route of guarded) {
    const other = route.auth === "admin" ? CREDENTIALS.ingest : CREDENTIALS.admin;
    it(`${route.method} ${route.path} needs the ${route.auth} credential`, async ({ expect }) => {
      for (const [authorization, status] of [
        [null, 401],
        [`Bearer ${other}`, 403],
        ["Bearer not-a-credential", 401],
        [`Basic ${btoa(`x:${CREDENTIALS[route.auth]}`)}`, 401],
      ] as const) {
        const response = await call(route.method, route.path, authorization);
        expect(response.status, authorization ?? "no credential").toBe(status);
        expect(ErrorSchema.parse(await response.json()).error.code).toBe(status === 401 ? "unauthorized" : "forbidden");
        // Refused before the limiter counted anything: there is no identity to count yet.
        expect(response.headers.get("x-ratelimit-limit")).toBeNull();
      }
    });
  }
});
