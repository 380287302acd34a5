import { z } from "zod";
import type { EndpointSpec } from "../schemas/api.ts";
import { ErrorSchema } from "../schemas/http.schema.ts";

/** What the document needs of an endpoint: its spec and operation id (routes carry a handler too). */
export type DocumentedEndpoint = Omit<EndpointSpec, "auth"> & { operationId: string; auth: EndpointSpec["auth"] };

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid JSON, body, query or path parameter (details carries the zod issues)",
  401: "Missing or unknown credential",
  403: "Wrong kind of credential",
  404: "Unknown resource or route",
  405: "Method not allowed (see Allow)",
  409: "Conflict",
  413: "Body over the limit",
  415: "Content-Type is not application/json",
  429: "Rate limited (see Retry-After)",
  500: "Unexpected error (quote its incident id)",
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
const ALLOW_HEADER = { description: "The methods this path serves", schema: { type: "string" } };

/** `/v1/counters/:scope/:key` → `/v1/counters/{scope}/{key}` */
function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

const JsonSchemaObject = z.record(z.string(), z.unknown());
type JsonSchema = z.infer<typeof JsonSchemaObject>;

/**
 * JSON Schemas for the document, with every `$defs` entry (zod emits them for recursive schemas,
 * such as `z.json()`) hoisted into `components.schemas` under a name of its own and the `#/$defs/…`
 * references rewritten to point there: a `$ref` in an OpenAPI document resolves against the
 * document, not against the schema it sits in.
 */
class SchemaSet {
  readonly components: Record<string, unknown> = {};
  #count = 0;

  /**
   * Requests as the server reads them (`io: "input"`: defaults optional); responses as it writes
   * them (`io: "output"`), where a `z.object` is closed (`additionalProperties: false`), so a field
   * the server adds without documenting it fails validation instead of drifting unseen.
   */
  add(schema: z.ZodType, io: "input" | "output"): JsonSchema {
    const json = JsonSchemaObject.parse(z.toJSONSchema(schema, { io, unrepresentable: "any" }));
    const { $defs, $schema: _dialect, ...rest } = json;
    const renamed = new Map<string, string>();
    for (const name of Object.keys(JsonSchemaObject.optional().parse($defs) ?? {})) {
      renamed.set(name, `Def${++this.#count}`);
    }
    const rewrite = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rewrite);
      if (value === null || typeof value !== "object") return value;
      return Object.fromEntries(
        Object.entries(value).map(([key, inner]) => {
          if (key === "$ref" && typeof inner === "string" && inner.startsWith("#/$defs/")) {
            const target = renamed.get(inner.slice("#/$defs/".length));
            return [key, target === undefined ? inner : `#/components/schemas/${target}`];
          }
          return [key, rewrite(inner)];
        }),
      );
    };
    for (const [name, def] of Object.entries(JsonSchemaObject.optional().parse($defs) ?? {})) {
      this.components[renamed.get(name) ?? name] = rewrite(def);
    }
    return JsonSchemaObject.parse(rewrite(rest));
  }
}

const PropertiesSchema = z.object({
  properties: z.record(z.string(), z.looseObject({ description: z.string().optional() })).default({}),
  required: z.array(z.string()).default([]),
});

/** OpenAPI parameters (`in`: path or query) from a zod object schema: one per property. */
function parameters(schemas: SchemaSet, schema: z.ZodObject | undefined, where: "path" | "query") {
  if (!schema) return [];
  const { properties, required } = PropertiesSchema.parse(schemas.add(schema, "input"));
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === "path" || required.includes(name),
    ...(property.description === undefined ? {} : { description: property.description }),
    schema: property,
  }));
}

/** Every status `endpoint` can answer besides its success, sorted. */
function errorStatuses(endpoint: DocumentedEndpoint): number[] {
  // Any path may be unknown (404), take another method (405) or fail unexpectedly (500).
  const statuses = new Set([...(endpoint.errors ?? []), 404, 405, 500]);
  if (endpoint.auth !== "none") [401, 403].forEach((status) => statuses.add(status));
  if (endpoint.rateLimit) statuses.add(429);
  if (endpoint.params || endpoint.query || endpoint.request) statuses.add(400);
  if (endpoint.request) [400, 413, 415].forEach((status) => statuses.add(status));
  return [...statuses].toSorted((a, b) => a - b);
}

/** The OpenAPI 3.1 document for `endpoints`, generated from their zod schemas. */
export function openApiDocument(endpoints: readonly DocumentedEndpoint[]): Record<string, unknown> {
  const schemas = new SchemaSet();
  const paths: Record<string, Record<string, unknown>> = {};
  const errorContent = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
  for (const endpoint of endpoints) {
    const limitHeaders = endpoint.rateLimit ? { headers: RATE_LIMIT_HEADERS } : {};
    const responses: Record<string, unknown> = {
      [endpoint.response.status]: {
        description: "Success",
        ...limitHeaders,
        content: {
          "application/json": { schema: schemas.add(endpoint.response.schema, "output") },
          ...Object.fromEntries(
            Object.entries(endpoint.response.alternatives ?? {}).map(([type, description]) => [
              type,
              { schema: { type: "string", description } },
            ]),
          ),
        },
      },
    };
    for (const status of errorStatuses(endpoint)) {
      const headers =
        status === 429 || status === 503
          ? { headers: { ...(endpoint.rateLimit ? RATE_LIMIT_HEADERS : {}), "Retry-After": RETRY_AFTER_HEADER } }
          : status === 405
            ? { headers: { Allow: ALLOW_HEADER } }
            : {};
      responses[status] = { description: ERROR_TEXT[status] ?? "Error", ...headers, content: errorContent };
    }
    const operation: Record<string, unknown> = {
      operationId: endpoint.operationId,
      summary: endpoint.summary,
      security: endpoint.auth === "none" ? [] : [{ [endpoint.auth === "admin" ? "adminToken" : "ingestKey"]: [] }],
      responses,
    };
    const declared = [...parameters(schemas, endpoint.params, "path"), ...parameters(schemas, endpoint.query, "query")];
    // A `:name` the endpoint declares no schema for is still a parameter (any non-empty segment).
    for (const match of endpoint.path.matchAll(/:([A-Za-z_]+)/g)) {
      if (!declared.some((parameter) => parameter.in === "path" && parameter.name === match[1])) {
        declared.push({ name: match[1] ?? "", in: "path", required: true, schema: { type: "string", minLength: 1 } });
      }
    }
    if (declared.length > 0) operation.parameters = declared;
    if (endpoint.request) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: schemas.add(endpoint.request, "input") } },
      };
    }
    const key = openApiPath(endpoint.path);
    paths[key] = { ...paths[key], [endpoint.method.toLowerCase()]: operation };
  }
  addTenantPaths(paths, errorContent);
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
      schemas: { Error: schemas.add(ErrorSchema, "output"), ...schemas.components },
    },
    paths,
  };
}

/**
 * `ANY /t/{project}/…`: the project's own Worker answers, so its success bodies are the tenant's;
 * Shipyard's own answers on these paths are errors of the contract's shape.
 */
function addTenantPaths(paths: Record<string, Record<string, unknown>>, errorContent: unknown): void {
  const project = {
    name: "project",
    in: "path",
    required: true,
    schema: { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,62}$" },
  };
  const rest = { name: "path", in: "path", required: true, schema: { type: "string" } };
  const operation = (operationId: string, withPath: boolean) => ({
    operationId,
    summary: "Tenant traffic: the project's deployed Worker answers (any method)",
    security: [],
    parameters: withPath ? [project, rest] : [project],
    responses: {
      default: { description: "The tenant Worker's own answer" },
      404: { description: "Unknown project or no deployed Worker", content: errorContent },
      500: {
        description:
          "tenant_exception: the tenant Worker threw; tenant_limit_exceeded: it ran past its CPU or subrequest limit",
        content: errorContent,
      },
      501: {
        description: "dispatch_not_configured: SCRIPT_HOST is cloudflare but there is no DISPATCHER binding",
        content: errorContent,
      },
      503: {
        description: "do_binding_removed: the route needs a Durable Object binding enforcement removed",
        content: errorContent,
      },
    },
  });
  const methods = ["get", "post", "put", "patch", "delete"] as const;
  paths["/t/{project}"] = Object.fromEntries(methods.map((m) => [m, operation(`tenant_${m}_root`, false)]));
  paths["/t/{project}/{path}"] = Object.fromEntries(methods.map((m) => [m, operation(`tenant_${m}`, true)]));
}
