import { z } from "zod";
import { ErrorSchema } from "../schemas/http.schema.ts";
import type { RouteSpec } from "./routes.ts";

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid JSON or body (details carries the zod issues)",
  401: "Missing or unknown credential",
  403: "Wrong kind of credential",
  404: "Unknown resource",
  405: "Method not allowed (see Allow)",
  409: "Conflict",
  413: "Body over the limit",
  415: "Content-Type is not application/json",
  429: "Rate limited (see Retry-After)",
  503: "Dependency unavailable (see Retry-After); nothing was enqueued",
};

/** Headers on every answer of a rate-limited route once the request was authenticated. */
const RATE_LIMIT_HEADERS = {
  "X-RateLimit-Limit": { description: "Requests allowed per window", schema: { type: "integer" } },
  "X-RateLimit-Remaining": { description: "Requests left in the window ending now", schema: { type: "integer" } },
  "X-RateLimit-Reset": {
    description: "Seconds until the oldest counted request leaves the window (a slot frees)",
    schema: { type: "integer" },
  },
};
const RETRY_AFTER_HEADER = { description: "Seconds to wait before retrying", schema: { type: "integer" } };

/** `/v1/counters/:scope/:key` → `/v1/counters/{scope}/{key}` */
function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

function jsonSchema(schema: z.ZodType): unknown {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
}

const JsonObjectSchema = z.object({
  properties: z.record(z.string(), z.looseObject({ description: z.string().optional() })).default({}),
  required: z.array(z.string()).default([]),
});

/** OpenAPI query parameters from a zod object schema: one per property. */
function queryParameters(schema: z.ZodObject | undefined): Record<string, unknown>[] {
  if (!schema) return [];
  const { properties, required } = JsonObjectSchema.parse(jsonSchema(schema));
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: "query",
    required: required.includes(name),
    ...(property.description === undefined ? {} : { description: property.description }),
    schema: property,
  }));
}

/** The OpenAPI 3.1 document for `routes`, generated from their zod schemas. */
export function openApiDocument(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorContent = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
  for (const route of routes) {
    const statuses = new Set(route.errors ?? []);
    if (route.auth !== "none") [401, 403, 429].forEach((status) => statuses.add(status));
    if (route.rateLimit) statuses.add(429);
    const limitHeaders = route.rateLimit ? { headers: RATE_LIMIT_HEADERS } : {};
    const responses: Record<string, unknown> = {
      [route.response.status]: {
        description: "Success",
        ...limitHeaders,
        content: {
          "application/json": { schema: jsonSchema(route.response.schema) },
          ...Object.fromEntries(
            Object.entries(route.response.alternatives ?? {}).map(([type, description]) => [
              type,
              { schema: { type: "string", description } },
            ]),
          ),
        },
      },
    };
    for (const status of [...statuses].toSorted((a, b) => a - b)) {
      const headers =
        status === 429 && route.rateLimit
          ? { headers: { ...RATE_LIMIT_HEADERS, "Retry-After": RETRY_AFTER_HEADER } }
          : {};
      responses[status] = { description: ERROR_TEXT[status] ?? "Error", ...headers, content: errorContent };
    }
    const parameters: Record<string, unknown>[] = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((match) => ({
      name: match[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    parameters.push(...queryParameters(route.query));
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      security: route.auth === "none" ? [] : [{ [route.auth === "admin" ? "adminToken" : "ingestKey"]: [] }],
      responses,
    };
    if (parameters.length > 0) operation.parameters = parameters;
    if (route.request) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(route.request) } },
      };
    }
    const key = openApiPath(route.path);
    paths[key] = { ...paths[key], [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Shipyard",
      version: "1",
      description:
        "Control plane for platforms hosting Cloudflare Workers and Durable Objects. Errors: " +
        '`{"error": {"code", "message", "details"?}}`; a 4xx or 5xx answer has enqueued nothing.',
    },
    components: {
      securitySchemes: {
        ingestKey: { type: "http", scheme: "bearer", description: "An ingest key from INGEST_KEYS" },
        adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
      },
      schemas: { Error: jsonSchema(ErrorSchema) },
    },
    paths,
  };
}
