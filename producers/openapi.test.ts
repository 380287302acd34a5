import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { API } from "../schemas/api.ts";
import { ROUTES } from "./routes.ts";

describe("GET /v1/openapi.json", () => {
  it("documents every route with its schemas, generated from the zod schemas", async ({ expect }) => {
    const response = await exports.default.fetch("http://shipyard.test/v1/openapi.json");
    expect(response.status).toBe(200);
    const document = await response.json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { operationId?: string; requestBody?: { content: Record<string, { schema: unknown }> } }>
      >;
    }>();
    expect(document.openapi).toBe("3.1.0");
    for (const route of ROUTES) {
      const path = route.path.replace(/:([A-Za-z_]+)/g, "{$1}");
      const operation = document.paths[path]?.[route.method.toLowerCase()];
      expect(operation?.operationId, `${route.method} ${route.path}`).toBe(route.operationId);
    }
    // The server serves every endpoint of the API table, once.
    expect(ROUTES.map((route) => route.operationId).toSorted()).toEqual(Object.keys(API).toSorted());
    const events = document.paths["/v1/events"]?.post?.requestBody?.content["application/json"]?.schema;
    expect(events).toMatchObject({
      type: "object",
      required: ["events"],
      additionalProperties: false,
      properties: { events: { type: "array", minItems: 1, maxItems: 1000 } },
    });
  });
});
