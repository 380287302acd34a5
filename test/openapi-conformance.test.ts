/**
 * Every operation of the API, called for real, answers only what `GET /v1/openapi.json` documents:
 * a status the operation lists, and a body that validates against that status's schema with
 * undeclared fields refused (the document closes every response object). A field the server adds
 * without documenting it, or a status it answers undocumented, fails here.
 */
import { Validator } from "@cfworker/json-schema";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, it } from "vitest";
import { z } from "zod";
import { API, ENDPOINTS, type OperationId } from "../schemas/api.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import { deployAndWait, projectId, sampleManifest } from "./deploy-helpers.ts";
import { ADMIN_TOKEN, BASE_URL, INGEST_KEY, makeEvent, uid } from "./helpers.ts";

const DocumentSchema = z.object({
  paths: z.record(
    z.string(),
    z.record(
      z.string(),
      z.object({
        operationId: z.string(),
        responses: z.record(
          z.string(),
          z.object({
            content: z.record(z.string(), z.object({ schema: z.record(z.string(), z.unknown()) })).optional(),
          }),
        ),
      }),
    ),
  ),
  components: z.object({ schemas: z.record(z.string(), z.unknown()) }),
});
type Document = z.infer<typeof DocumentSchema>;

/** A schema of the document as a standalone JSON Schema: component refs become local `$defs`. */
function standalone(document: Document, schema: unknown): Record<string, unknown> {
  const local = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(local);
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        key === "$ref" && typeof inner === "string" ? inner.replace("#/components/schemas/", "#/$defs/") : local(inner),
      ]),
    );
  };
  return { ...z.record(z.string(), z.unknown()).parse(local(schema)), $defs: local(document.components.schemas) };
}

interface Call {
  method: string;
  path: string;
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

async function send(call: Call): Promise<Response> {
  const headers = new Headers(call.headers);
  const token = call.token === undefined ? ADMIN_TOKEN : call.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  if (call.body !== undefined) headers.set("content-type", "application/json");
  return exports.default.fetch(
    new Request(`${BASE_URL}${call.path}`, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    }),
  );
}

const project = projectId("openapi");
let deployId = "";

beforeAll(async () => {
  deployId = (await deployAndWait(sampleManifest(project))).deploy_id;
}, 60_000);

/** One or more real calls per operation: its success and the errors it documents. */
function callsFor(op: OperationId): Call[] {
  const missing = crypto.randomUUID();
  switch (op) {
    case "getHealth":
      return [{ method: "GET", path: "/v1/health", token: null }];
    case "postEvents":
      return [
        { method: "POST", path: "/v1/events", token: INGEST_KEY, body: { events: [makeEvent("oa", uid("e"))] } },
        { method: "POST", path: "/v1/events", token: INGEST_KEY, body: { events: [] } },
      ];
    case "postCounters":
      return [
        {
          method: "POST",
          path: "/v1/counters",
          token: INGEST_KEY,
          body: { increments: [{ id: uid("i"), scope: "post", key: "oa", field: "likes", delta: 1 }] },
        },
      ];
    case "getCounter":
      return [
        { method: "GET", path: "/v1/counters/post/oa", token: INGEST_KEY },
        { method: "GET", path: "/v1/counters/nope/oa", token: INGEST_KEY },
      ];
    case "postDeploy":
      return [{ method: "POST", path: "/v1/deploys", token: null, body: sampleManifest(project) }];
    case "getDeploy":
      return [
        { method: "GET", path: `/v1/deploys/${deployId}` },
        { method: "GET", path: `/v1/deploys/${missing}` },
      ];
    case "listProjects":
      return [{ method: "GET", path: "/v1/projects" }];
    case "getProject":
      return [
        { method: "GET", path: `/v1/projects/${project}` },
        { method: "GET", path: "/v1/projects/no-such-project" },
      ];
    case "deleteProject":
      return [{ method: "DELETE", path: `/v1/projects/${project}` }];
    case "rollbackProject":
      return [{ method: "POST", path: "/v1/projects/no-such-project/rollback" }];
    case "exportResource":
      return [{ method: "POST", path: `/v1/projects/${project}/resources/DB/export` }];
    case "rotateDeploySecret":
      return [
        { method: "POST", path: `/v1/projects/${project}/deploy-secret/rotate` },
        { method: "POST", path: "/v1/projects/no-such-project/deploy-secret/rotate" },
      ];
    case "getDoUsage":
      return [{ method: "GET", path: `/v1/projects/${project}/do-usage` }];
    case "restoreEnforcement":
      return [{ method: "POST", path: `/v1/projects/${project}/enforcement/restore` }];
    case "runEnforcement":
      return [{ method: "POST", path: "/v1/admin/enforcement/run", body: { threshold_ms: 1e12 } }];
    case "getEnforcementRun":
      return [{ method: "GET", path: "/v1/admin/enforcement/runs/enforcement-none" }];
    case "listAudit":
      return [
        { method: "GET", path: `/v1/admin/audit?project_id=${project}` },
        { method: "GET", path: "/v1/admin/audit?limit=0" },
      ];
    case "listDeadLetters":
      return [{ method: "GET", path: "/v1/admin/dlq?limit=5" }];
    case "purgeDeadLetters":
      return [
        { method: "POST", path: "/v1/admin/dlq/purge", body: { filter: { project_id: missing }, dry_run: true } },
      ];
    case "startRedrive":
      return [
        { method: "POST", path: "/v1/admin/dlq/redrive", body: { filter: { project_id: missing }, dry_run: true } },
      ];
    case "getRedrive":
      return [{ method: "GET", path: `/v1/admin/dlq/redrive/${missing}` }];
    case "cancelRedrive":
      return [{ method: "POST", path: `/v1/admin/dlq/redrive/${missing}/cancel` }];
    case "getDeadLetter":
      return [{ method: "GET", path: `/v1/admin/dlq/${"0".repeat(64)}` }];
    case "deleteDeadLetter":
      return [{ method: "DELETE", path: `/v1/admin/dlq/${"0".repeat(64)}` }];
    case "sendToQueue":
      return [
        {
          method: "POST",
          path: "/v1/admin/queues/shipyard-telemetry/send",
          body: { body: envelope("telemetry.events", { events: [makeEvent("oa", uid("q"))] }) },
        },
        { method: "POST", path: "/v1/admin/queues/nope/send", body: { body: 1 } },
      ];
    case "getDeadLetterStats":
      return [
        { method: "GET", path: `/v1/admin/dlq/stats?project_id=${missing}` },
        { method: "GET", path: "/v1/admin/dlq/stats?limit=5" },
      ];
    case "createSession":
      return [
        { method: "POST", path: "/v1/admin/session", token: null, body: { token: ADMIN_TOKEN } },
        { method: "POST", path: "/v1/admin/session", token: null, body: { token: "wrong" } },
        {
          method: "POST",
          path: "/v1/admin/session",
          token: null,
          headers: { origin: "https://elsewhere.example" },
          body: { token: ADMIN_TOKEN },
        },
      ];
    case "getSession":
      return [{ method: "GET", path: "/v1/admin/session" }];
    case "deleteSession":
      return [{ method: "DELETE", path: "/v1/admin/session", token: null }];
    case "getMetrics":
      return [{ method: "GET", path: "/v1/admin/metrics" }];
    case "getRateLimits":
      return [{ method: "GET", path: "/v1/admin/rate-limits/ip:127.0.0.1" }];
    case "resetRateLimits":
      return [{ method: "POST", path: "/v1/admin/rate-limits/ip:127.0.0.2/reset" }];
    default:
      return [];
  }
}

describe("every operation answers what the OpenAPI document says", () => {
  for (const { operationId: op, method, path } of ENDPOINTS) {
    it(`${op}: ${method} ${path}`, async ({ expect }) => {
      const document = DocumentSchema.parse(await (await exports.default.fetch(`${BASE_URL}/v1/openapi.json`)).json());
      const spec = API[op];
      const operation = document.paths[spec.path.replace(/:(\w+)/g, "{$1}")]?.[spec.method.toLowerCase()];
      expect(operation?.operationId).toBe(op);
      const calls = callsFor(op);
      // A new operation needs its case above: the document's promise is checked for all of them.
      expect(calls.length, `no call exercises ${op}`).toBeGreaterThan(0);
      for (const call of calls) {
        const response = await send(call);
        const documented = operation?.responses[String(response.status)];
        expect(documented, `${call.method} ${call.path} answered an undocumented ${response.status}`).toBeDefined();
        const schema = documented?.content?.["application/json"]?.schema;
        const type = response.headers.get("content-type") ?? "";
        if (schema === undefined || !type.includes("application/json")) continue;
        const result = new Validator(standalone(document, schema), "2020-12", false).validate(await response.json());
        expect(result.errors, `${call.method} ${call.path} → ${response.status}`).toEqual([]);
      }
    });
  }
});
