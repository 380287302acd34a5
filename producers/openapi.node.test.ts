/**
 * The OpenAPI document validates with two independent validators (run on Node: `npm run test:node`,
 * part of `npm test`). It is generated here exactly as `GET /v1/openapi.json` generates it, from the
 * API table (schemas/api.ts); the workerd test producers/openapi.test.ts checks the served copy is
 * this one and that real answers match it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { OpenAPI } from "openapi-types";
import { z } from "zod";
import { Validator } from "@seriousme/openapi-schema-validator";
import { ENDPOINTS } from "../schemas/api.ts";
import { openApiDocument } from "./openapi.ts";

const PathsSchema = z.record(
  z.string(),
  z.record(
    z.string(),
    z.object({
      operationId: z.string().optional(),
      parameters: z.array(z.object({ name: z.string(), in: z.string(), schema: z.unknown() })).default([]),
    }),
  ),
);

/** A fresh copy each time: swagger-parser dereferences the object it is given in place. */
function document(): OpenAPI.Document {
  // The generator's output is a plain JSON object; its OpenAPI shape is what these tests check.
  // oxlint-disable-next-line typescript/no-unsafe-type-assertion
  return structuredClone(openApiDocument(ENDPOINTS)) as unknown as OpenAPI.Document;
}

void describe("the OpenAPI document", () => {
  void it("is valid OpenAPI 3.1 for @seriousme/openapi-schema-validator (the OAI JSON Schemas)", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(openApiDocument(ENDPOINTS)));
    assert.deepEqual(result.errors ?? [], [], JSON.stringify(result.errors, null, 2)?.slice(0, 4000));
    assert.equal(result.valid, true);
    assert.equal(validator.version, "3.1");
  });

  void it("is valid for @apidevtools/swagger-parser, every $ref resolving", async () => {
    const api = await SwaggerParser.validate(document());
    assert.equal(api.info.title, "Shipyard");
    const refs = await SwaggerParser.resolve(document());
    const pointers = new Set<string>();
    const collect = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(collect);
      else if (value !== null && typeof value === "object") {
        for (const [key, inner] of Object.entries(value)) {
          if (key === "$ref" && typeof inner === "string") pointers.add(inner);
          else collect(inner);
        }
      }
    };
    collect(document());
    assert.ok(pointers.size > 0);
    for (const pointer of pointers) assert.ok(refs.exists(pointer, {}), `${pointer} does not resolve`);
  });

  void it("gives every operation an operationId, unique, and every path parameter a schema", () => {
    const paths = PathsSchema.parse(openApiDocument(ENDPOINTS).paths);
    const ids: string[] = [];
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(operation.operationId, `${method} ${path} has no operationId`);
        ids.push(operation.operationId);
        const names = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? "");
        const declared = operation.parameters;
        for (const name of names) {
          assert.ok(
            declared.some((parameter) => parameter.in === "path" && parameter.name === name && parameter.schema),
            `${method} ${path}: path parameter ${name} undocumented`,
          );
        }
      }
    }
    assert.equal(new Set(ids).size, ids.length, "operationIds are not unique");
  });
});
