/**
 * Generators and oracles for the edge's property-based tests (test/properties.test.ts).
 *
 * Request bodies come from the route table's own zod schemas (through their JSON Schema), then
 * get mutated into near-valid variants; headers cover every credential kind, content-type
 * variants and Standard Webhooks headers; paths cover every route pattern plus tenants and
 * unknown paths. `checkExchange` states what must hold for any answer, and, where the request
 * says enough to know it, which status the edge must give.
 */
import { env, exports } from "cloudflare:workers";
import * as fc from "fast-check";
import { type IRequest, Router } from "itty-router";
import { type ExpectStatic, type MockInstance, vi } from "vitest";
import { z } from "zod";
import type { JSONSchema } from "zod/v4/core";
import { assertNever } from "../lib/result.ts";
import { BODY_LIMIT_BYTES, DEPLOY_BODY_LIMIT_BYTES, parseJsonBytes } from "../producers/http.ts";
import type { Method } from "../producers/handler.ts";
import { ROUTES, type RouteSpec } from "../producers/routes.ts";
import { WEBHOOK_TOLERANCE_S, signWebhook } from "../producers/webhook.ts";
import { ErrorSchema } from "../schemas/http.schema.ts";
import { ADMIN_TOKEN, BASE_URL, INGEST_KEY } from "./helpers.ts";
import { WEBHOOK_SECRET } from "./deploy-helpers.ts";

/** The second ingest key of vitest.config.ts (TEST_SECRETS). */
const SECOND_INGEST_KEY = "second-ingest-key";
const OTHER_WEBHOOK_SECRET = "whsec_b3RoZXItc2VjcmV0LW5vdC1zaGlweWFyZHM=";
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Queue producers: every Queue binding of the Worker, spied on.

export interface QueueSpies {
  /** Binding names spied on (every Queue in env, so a new queue is covered without a change here). */
  names: string[];
  /** send + sendBatch calls so far, over every queue. */
  calls: () => number;
  /** The spies by binding name. */
  byName: Map<string, { send: MockInstance<Queue["send"]>; sendBatch: MockInstance<Queue["sendBatch"]> }>;
}

function isQueue(value: unknown): value is Queue {
  return (
    typeof value === "object" &&
    value !== null &&
    "send" in value &&
    typeof value.send === "function" &&
    "sendBatch" in value &&
    typeof value.sendBatch === "function"
  );
}

/**
 * Spies on `send` and `sendBatch` of every Queue binding. The tests share the isolate (and the env
 * object) with the Worker, so the spies see the Worker's own sends. `capture` answers as a queue
 * would without enqueueing: requests then have no effects after their answer, so every send seen
 * while a request runs is that request's. `through` calls the real queue.
 */
export function spyOnQueues(mode: "capture" | "through"): QueueSpies {
  const byName = new Map<string, { send: MockInstance<Queue["send"]>; sendBatch: MockInstance<Queue["sendBatch"]> }>();
  for (const [name, value] of Object.entries(env)) {
    if (!isQueue(value)) continue;
    const send = vi.spyOn(value, "send");
    const sendBatch = vi.spyOn(value, "sendBatch");
    if (mode === "capture") {
      const metadata = { metrics: { backlogCount: 0, backlogBytes: 0 } };
      send.mockResolvedValue({ metadata });
      sendBatch.mockResolvedValue({ metadata });
    }
    byName.set(name, { send, sendBatch });
  }
  return {
    names: [...byName.keys()].toSorted(),
    byName,
    calls: () => [...byName.values()].reduce((n, s) => n + s.send.mock.calls.length + s.sendBatch.mock.calls.length, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// JSON Schema (from the route table's zod schemas) → arbitraries of valid-looking values.

type Schema = JSONSchema.JSONSchema;
/** `$ref` chains (recursive schemas such as `z.json()`) stop growing past this depth. */
const MAX_REF_DEPTH = 3;
/** Arrays get at most this many items past their minimum. */
const EXTRA_ITEMS = 3;

const scalarJson = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 8 }));
const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** The JSON Schema a route's request (or query) schema documents, as the OpenAPI document has it. */
export function jsonSchemaOf(schema: z.ZodType): Schema {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
}

function resolveRef(ref: string, root: Schema): Schema | boolean {
  if (ref === "#") return root;
  const name = /^#\/\$defs\/(.+)$/.exec(ref)?.[1];
  const found = name === undefined ? undefined : root.$defs?.[name];
  if (!found) throw new Error(`unsupported $ref ${ref}`);
  return found;
}

function integerArbitrary(schema: Schema): fc.Arbitrary<number> {
  const min = typeof schema.minimum === "number" ? schema.minimum : Number.MIN_SAFE_INTEGER;
  const max = typeof schema.maximum === "number" ? schema.maximum : Number.MAX_SAFE_INTEGER;
  const full = fc.bigInt({ min: BigInt(Math.ceil(min)), max: BigInt(Math.floor(max)) }).map(Number);
  const smallMin = Math.max(min, -1000);
  const smallMax = Math.min(max, 1000);
  return smallMin <= smallMax ? fc.oneof(fc.integer({ min: smallMin, max: smallMax }), full) : full;
}

function stringArbitrary(schema: Schema): fc.Arbitrary<string> {
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.min(schema.maxLength ?? minLength + 16, minLength + 16);
  const fits = (text: string) => text.length >= minLength && text.length <= (schema.maxLength ?? Infinity);
  if (schema.pattern !== undefined) return fc.stringMatching(new RegExp(schema.pattern)).filter(fits);
  if (schema.format === "uuid") return fc.uuid();
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ minLength, maxLength }) },
    { weight: 1, arbitrary: fc.string({ minLength, maxLength, unit: "grapheme" }) },
  );
}

function objectArbitrary(schema: Schema, root: Schema, depth: number): fc.Arbitrary<unknown> {
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const known = fc.record(
    Object.fromEntries(properties.map(([name, property]) => [name, arbitraryOf(property, root, depth)])),
    { requiredKeys: properties.map(([name]) => name).filter((name) => required.has(name)) },
  );
  const additional = schema.additionalProperties;
  if (additional === undefined || additional === false) return known;
  const keys =
    typeof schema.propertyNames === "object" ? stringArbitrary(schema.propertyNames) : fc.string({ maxLength: 12 });
  const extra = fc.dictionary(keys, arbitraryOf(additional, root, depth), { maxKeys: EXTRA_ITEMS });
  return fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...k }));
}

/** An arbitrary of values that (mostly) satisfy `schema`: the starting point of near-valid bodies. */
export function arbitraryOf(schema: Schema | boolean, root: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (typeof schema === "boolean") return anyJson;
  if (schema.$ref !== undefined) {
    return depth >= MAX_REF_DEPTH ? scalarJson : arbitraryOf(resolveRef(schema.$ref, root), root, depth + 1);
  }
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return fc.oneof(...union.map((member) => arbitraryOf(member, root, depth)));
  if (schema.allOf?.[0]) return arbitraryOf(schema.allOf[0], root, depth);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  if (types.length > 1) return fc.oneof(...types.map((type) => arbitraryOf({ ...schema, type }, root, depth)));
  switch (types[0]) {
    case "string":
      return stringArbitrary(schema);
    case "integer":
      return integerArbitrary(schema);
    case "number":
      return fc.double({ min: schema.minimum, max: schema.maximum, noNaN: true, noDefaultInfinity: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const items = typeof schema.items === "object" && !Array.isArray(schema.items) ? schema.items : true;
      const minLength = schema.minItems ?? 0;
      const maxLength = Math.min(schema.maxItems ?? minLength + EXTRA_ITEMS, minLength + EXTRA_ITEMS);
      return fc.array(arbitraryOf(items, root, depth), { minLength, maxLength });
    }
    case "object":
      return objectArbitrary(schema, root, depth);
    default:
      return anyJson;
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations: a valid value made near-valid (a field dropped, retyped, added, made huge, nested
// deep, an array over its limit, a lone surrogate, an own `__proto__` key), then its JSON text
// broken or re-encoded.

const VALUE_MUTATIONS = ["drop", "extra", "retype", "huge", "deep", "overflow", "empty", "surrogate", "proto"] as const;
type ValueMutationKind = (typeof VALUE_MUTATIONS)[number];
export interface ValueMutation {
  kind: ValueMutationKind;
  /** Which node (pre-order index, modulo the node count). */
  at: number;
  payload: unknown;
  /** huge: string length; deep: nesting depth. */
  size: number;
}

const TEXT_MUTATIONS = [
  "none",
  "duplicate_key",
  "truncate",
  "trailing_garbage",
  "bom",
  "invalid_utf8",
  "utf16",
  "whitespace",
] as const;
export type TextMutation = (typeof TEXT_MUTATIONS)[number];

const retypePayload = fc.oneof(
  anyJson,
  fc.constantFrom<unknown>(1e308, -1, 1.5, 2 ** 53 + 2, "", "x", true, null, [], {}, "NaN", "1", 0),
);

export const valueMutationArbitrary: fc.Arbitrary<ValueMutation> = fc.record({
  kind: fc.constantFrom(...VALUE_MUTATIONS),
  at: fc.nat(),
  payload: retypePayload,
  size: fc.constantFrom(65, 129, 257, 5_121, 16_385, 100_000),
});

type Path = (string | number)[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Paths of the nodes of `value`, pre-order, down to `MAX_WALK_DEPTH` (a "deep" mutation nests far deeper). */
const MAX_WALK_DEPTH = 32;
function nodePaths(value: unknown, path: Path = [], into: Path[] = []): Path[] {
  into.push(path);
  if (path.length >= MAX_WALK_DEPTH) return into;
  if (Array.isArray(value)) value.forEach((item, index) => nodePaths(item, [...path, index], into));
  else if (isRecord(value)) for (const [key, item] of Object.entries(value)) nodePaths(item, [...path, key], into);
  return into;
}

function getAt(value: unknown, path: Path): unknown {
  let node = value;
  for (const step of path) {
    if (Array.isArray(node) && typeof step === "number") node = node[step];
    else if (isRecord(node) && typeof step === "string") node = node[step];
    else return undefined;
  }
  return node;
}

/** Sets (or with `remove`, deletes) the node at `path`; returns the new root. */
function setAt(root: unknown, path: Path, next: unknown, remove = false): unknown {
  if (path.length === 0) return remove ? undefined : next;
  const parent = getAt(root, path.slice(0, -1));
  const last = path.at(-1);
  if (Array.isArray(parent) && typeof last === "number") {
    if (remove) parent.splice(last, 1);
    else parent[last] = next;
  } else if (isRecord(parent) && typeof last === "string") {
    if (remove) delete parent[last];
    else defineOwn(parent, last, next);
  }
  return root;
}

/** An own, enumerable property even for `__proto__` (as `JSON.parse` makes it). */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `depth` levels of alternating arrays and objects around `leaf`, built without recursion. */
export function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { d: value };
  return value;
}

/** Applies `mutations` to a copy of `value` (each at a node chosen by its `at`). */
export function mutate(value: unknown, mutations: readonly ValueMutation[]): unknown {
  let root: unknown = structuredClone(value);
  for (const mutation of mutations) {
    const paths = nodePaths(root);
    const path = paths[mutation.at % paths.length] ?? [];
    const node = getAt(root, path);
    switch (mutation.kind) {
      case "drop":
        if (path.length > 0) root = setAt(root, path, undefined, true);
        break;
      case "extra":
        if (Array.isArray(node)) node.push(mutation.payload);
        else if (isRecord(node)) defineOwn(node, `extra_${mutation.at % 7}`, mutation.payload);
        else root = setAt(root, path, mutation.payload);
        break;
      case "retype":
        root = setAt(root, path, mutation.payload);
        break;
      case "huge":
        root = setAt(root, path, "x".repeat(mutation.size));
        break;
      case "deep":
        // Past the edge's 512 levels; deeper is the deep-nesting test's job (stringifying it here overflows).
        root = setAt(root, path, nested(Math.min(mutation.size, 1_000)));
        break;
      case "overflow":
        if (Array.isArray(node))
          root = setAt(
            root,
            path,
            Array.from({ length: 1001 }, () => node[0] ?? null),
          );
        break;
      case "empty":
        root = setAt(root, path, Array.isArray(node) ? [] : isRecord(node) ? {} : typeof node === "string" ? "" : 0);
        break;
      case "surrogate":
        root = setAt(root, path, `${typeof node === "string" ? node : "s"}\ud800`);
        break;
      case "proto":
        if (isRecord(node)) defineOwn(node, "__proto__", mutation.payload);
        break;
    }
  }
  return root;
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80], [0xf4, 0x90, 0x80, 0x80]];

/** JSON text of `value` (undefined → empty), with a text-level mutation, as bytes. */
export function encodeJson(value: unknown, mutation: TextMutation, at: number): Uint8Array {
  const text = value === undefined ? "" : JSON.stringify(value);
  const cut = text.length === 0 ? 0 : at % text.length;
  switch (mutation) {
    case "none":
      return encoder.encode(text);
    case "duplicate_key":
      return encoder.encode(text.startsWith("{") ? `{"${firstKey(value)}":0,${text.slice(1)}` : text);
    case "truncate":
      return encoder.encode(text.slice(0, cut));
    case "trailing_garbage":
      return encoder.encode(`${text}${["x", "\u0000", "}", ",", " []"][at % 5]}`);
    case "bom":
      return concatBytes(new Uint8Array([0xef, 0xbb, 0xbf]), encoder.encode(text));
    case "invalid_utf8": {
      const bytes = encoder.encode(text);
      const position = bytes.byteLength === 0 ? 0 : at % bytes.byteLength;
      const bad = new Uint8Array(INVALID_UTF8[at % INVALID_UTF8.length] ?? [0xff]);
      return concatBytes(bytes.subarray(0, position), bad, bytes.subarray(position));
    }
    case "utf16": {
      const out = new Uint8Array(text.length * 2);
      for (let i = 0; i < text.length; i++) {
        const unit = text.charCodeAt(i);
        out[2 * i] = unit & 0xff;
        out[2 * i + 1] = unit >> 8;
      }
      return out;
    }
    case "whitespace":
      return encoder.encode(` \n\t${text}\r\n `);
    default:
      return assertNever(mutation);
  }
}

function firstKey(value: unknown): string {
  return isRecord(value) ? (Object.keys(value)[0] ?? "k") : "k";
}

// ---------------------------------------------------------------------------------------------
// Requests.

export type AuthLabel = "none" | "ingest" | "admin" | "unknown" | "malformed";
export type ContentTypeLabel = "json" | "other" | "none";
/** How the Standard Webhooks headers are made; only `valid` and `rotated` verify. */
export type WebhookMode =
  | "absent"
  | "valid"
  | "rotated"
  | "wrong_secret"
  | "stale"
  | "future"
  | "tampered"
  | "garbage_signature"
  | "wrong_version"
  | "missing_id"
  | "missing_timestamp"
  | "missing_signature"
  | "bad_timestamp"
  | "long_id";

const WEBHOOK_MODES: readonly WebhookMode[] = [
  "absent",
  "rotated",
  "wrong_secret",
  "stale",
  "future",
  "tampered",
  "garbage_signature",
  "wrong_version",
  "missing_id",
  "missing_timestamp",
  "missing_signature",
  "bad_timestamp",
  "long_id",
];

export interface RequestSpec {
  method: string;
  /** Path and query, already encoded. */
  target: string;
  auth: { label: AuthLabel; values: string[] };
  contentType: { label: ContentTypeLabel; value: string | null };
  webhook: { mode: WebhookMode; id: string };
  extraHeaders: [string, string][];
  /** The body's bytes; null sends none. */
  body: Uint8Array | null;
  /** Send the body as a stream (no Content-Length). */
  stream: boolean;
  /** What the body was made from, for failure reports. */
  note: string;
}

const credentials: Record<AuthLabel, fc.Arbitrary<string[]>> = {
  none: fc.constant<string[]>([]),
  ingest: fc.constantFrom<string[]>(
    [`Bearer ${INGEST_KEY}`],
    [`bearer ${INGEST_KEY}`],
    [`BEARER   ${INGEST_KEY}  `],
    [`Bearer\t${SECOND_INGEST_KEY}`],
    [`Bearer ${SECOND_INGEST_KEY}`],
  ),
  admin: fc.constantFrom<string[]>([`Bearer ${ADMIN_TOKEN}`], [`bearer ${ADMIN_TOKEN}`], [`Bearer  ${ADMIN_TOKEN} `]),
  unknown: fc.oneof(
    fc.constantFrom<string[]>(["Bearer not-a-key"], [`Bearer ${INGEST_KEY}x`], [`Bearer ${ADMIN_TOKEN.toUpperCase()}`]),
    fc.stringMatching(/^[!-~]{1,64}$/).map((token) => [`Bearer ${token}`]),
    fc.constant<string[]>([`Bearer ${"k".repeat(8_000)}`]),
  ),
  malformed: fc.constantFrom<string[]>(
    [""],
    ["Bearer"],
    ["Bearer "],
    [`Basic ${btoa(`user:${INGEST_KEY}`)}`],
    [`Token ${ADMIN_TOKEN}`],
    [INGEST_KEY],
    [`Bearer${INGEST_KEY}`],
    [`Bearer ${INGEST_KEY} ${ADMIN_TOKEN}`],
    [`Bearer ${INGEST_KEY}`, `Bearer ${ADMIN_TOKEN}`],
    [`Bearer ${ADMIN_TOKEN},`],
  ),
};

function labelled(label: AuthLabel, weight: number) {
  return { weight, arbitrary: credentials[label].map((values) => ({ label, values })) };
}

function authArbitrary(required: RouteSpec["auth"] | null): fc.Arbitrary<RequestSpec["auth"]> {
  const right = required === "ingest" || required === "admin" ? required : null;
  return fc.oneof(
    labelled("none", 1),
    labelled("ingest", right === "ingest" ? 6 : 1),
    labelled("admin", right === "admin" ? 6 : 1),
    labelled("unknown", 1),
    labelled("malformed", 1),
  );
}

const contentTypeArbitrary: fc.Arbitrary<RequestSpec["contentType"]> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;charset=UTF-16",
        " application/json ; foo=bar",
      )
      .map((value) => ({ label: "json" as const, value })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-seq",
        "application/ld+json",
        "json",
        "*/*",
        "",
      )
      .map((value) => ({ label: "other" as const, value })),
  },
  { weight: 1, arbitrary: fc.constant({ label: "none" as const, value: null }) },
);

const headerToken = fc.stringMatching(/^[!-~]{0,40}$/);

const extraHeadersArbitrary: fc.Arbitrary<[string, string][]> = fc.array(
  fc.oneof(
    fc.tuple(fc.constant("cf-connecting-ip"), fc.oneof(fc.ipV4(), fc.ipV6(), headerToken)),
    fc.tuple(fc.constant("cf-connecting-ip"), fc.constant("1".repeat(2_000))),
    fc.tuple(fc.constantFrom("accept", "x-forwarded-for", "content-encoding", "origin", "x-request-id"), headerToken),
  ),
  { maxLength: 3 },
);

/** A path segment: valid-looking ids, known words, encoded text, broken percent-encoding, dot segments. */
export const segmentArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "post",
      "user",
      "purge",
      "redrive",
      "shipyard-telemetry",
      "shipyard-counters-dlq",
      "enforcement-manual-1",
      "key:0123456789abcdef",
      "ip:127.0.0.1",
    ),
  },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" }).map(encodeURIComponent) },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 6 })
      .map((bytes) => Array.from(bytes, (b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom("%", "%ZZ", "%E0%A4%A", "%ED%A0%80", "%00", "%2F", "..", ".", "a%2Fb", "%20", "-", "A"),
  },
  { weight: 1, arbitrary: fc.integer({ min: 129, max: 600 }).map((n) => "s".repeat(n)) },
);

const queryArbitraryGeneric: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  {
    weight: 2,
    arbitrary: fc
      .dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 }), { maxKeys: 3 })
      .map((params) => `?${new URLSearchParams(params).toString()}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("?", "?%zz=1&&=&a", "?confirm=", "?confirm=x&confirm=y", "?a=%FF") },
);

function queryArbitraryFor(schema: z.ZodObject): fc.Arbitrary<string> {
  const json = jsonSchemaOf(schema);
  return fc
    .tuple(arbitraryOf(json, json), fc.array(valueMutationArbitrary, { maxLength: 2 }), fc.boolean())
    .map(([value, mutations, mutated]) => {
      const params = new URLSearchParams();
      const source = mutated ? mutate(value, mutations) : value;
      if (isRecord(source)) {
        for (const [name, param] of Object.entries(source)) {
          params.append(name, typeof param === "string" ? param : JSON.stringify(param));
        }
      }
      return `?${params.toString()}`;
    });
}

/**
 * Values that name something real, by path parameter name, so that requests get past the path to
 * the body; parameters not listed here get `segmentArbitrary` only.
 */
export const PARAM_HINTS: Record<string, fc.Arbitrary<string>> = {
  queue: fc.constantFrom(
    "shipyard-telemetry",
    "shipyard-counters",
    "shipyard-deploys",
    "shipyard-telemetry-dlq",
    "shipyard-counters-dlq",
    "shipyard-deploys-dlq",
  ),
  scope: fc.constantFrom("post", "user"),
  task_id: fc.uuid(),
  id: fc.oneof(fc.uuid(), fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/)),
  identifier: fc.constantFrom("key:0123456789abcdef", "admin:0123456789abcdef", "ip:127.0.0.1", "ip:unknown"),
};

/** A value for path parameter `:name`: its hint (mostly) or any segment. */
function segmentFor(part: string): fc.Arbitrary<string> {
  const hint = PARAM_HINTS[part.slice(1)];
  return hint ? fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: segmentArbitrary }) : segmentArbitrary;
}

/** A route's path with its `:params` filled by their hints or `segmentArbitrary`. */
function pathArbitraryFor(pattern: string): fc.Arbitrary<string> {
  const parts = pattern.split("/");
  return fc
    .tuple(...parts.map((part) => (part.startsWith(":") ? segmentFor(part) : fc.constant(part))))
    .map((filled) => filled.join("/"));
}

/** Sample bodies for a route with a request schema: near-valid most of the time. */
function bodyArbitraryFor(route: RouteSpec | null): fc.Arbitrary<{ body: Uint8Array | null; note: string }> {
  const arbitrary: { weight: number; arbitrary: fc.Arbitrary<{ body: Uint8Array | null; note: string }> }[] = [
    { weight: 1, arbitrary: fc.constant({ body: null, note: "no body" }) },
    { weight: 1, arbitrary: fc.constant({ body: new Uint8Array(), note: "empty body" }) },
    {
      weight: 1,
      arbitrary: anyJson.map((value) => ({ body: encoder.encode(JSON.stringify(value)), note: "arbitrary JSON" })),
    },
    {
      weight: 1,
      arbitrary: fc.string({ maxLength: 64, unit: "grapheme" }).map((text) => ({
        body: encoder.encode(text),
        note: "text",
      })),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((body) => ({ body, note: "random bytes" })) },
  ];
  if (route?.request) {
    const json = jsonSchemaOf(route.request);
    arbitrary.push({
      weight: 10,
      arbitrary: fc
        .tuple(
          arbitraryOf(json, json),
          fc.oneof(fc.constant([]), fc.array(valueMutationArbitrary, { minLength: 1, maxLength: 3 })),
          fc.oneof(
            { weight: 4, arbitrary: fc.constant<TextMutation>("none") },
            { weight: 1, arbitrary: fc.constantFrom(...TEXT_MUTATIONS) },
          ),
          fc.nat(),
        )
        .map(([value, mutations, textMutation, at]) => ({
          body: encodeJson(mutate(value, mutations), textMutation, at),
          note: `schema value, mutations [${mutations.map((m) => m.kind).join(", ")}], text ${textMutation}`,
        })),
    });
  }
  return fc.oneof(...arbitrary);
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "patch", "get"];

function methodArbitrary(preferred: string | null): fc.Arbitrary<string> {
  const any = fc.constantFrom(...METHODS);
  return preferred === null
    ? any
    : fc.oneof({ weight: 3, arbitrary: fc.constant(preferred) }, { weight: 1, arbitrary: any });
}

function webhookArbitrary(weightValid: number): fc.Arbitrary<RequestSpec["webhook"]> {
  return fc.record({
    mode: fc.oneof(
      { weight: weightValid, arbitrary: fc.constant<WebhookMode>("valid") },
      { weight: 1, arbitrary: fc.constantFrom(...WEBHOOK_MODES) },
    ),
    id: fc.oneof(
      fc.uuid().map((id) => `msg_${id}`),
      headerToken.filter((id) => id.length > 0),
    ),
  });
}

/** Everything about a request but where it goes. */
type RequestParts = Omit<RequestSpec, "method" | "target" | "body" | "note"> & {
  body: { body: Uint8Array | null; note: string };
};

function requestParts(route: RouteSpec | null): fc.Arbitrary<RequestParts> {
  return fc.record({
    auth: authArbitrary(route ? route.auth : null),
    contentType: contentTypeArbitrary,
    webhook: webhookArbitrary(route?.path === "/v1/deploys" ? 4 : 0),
    extraHeaders: extraHeadersArbitrary,
    body: bodyArbitraryFor(route),
    stream: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  });
}

function assemble(method: string, target: string, parts: RequestParts): RequestSpec {
  const bodyless = ["GET", "HEAD"].includes(method.toUpperCase());
  return withToString({
    method,
    target,
    auth: parts.auth,
    contentType: parts.contentType,
    webhook: parts.webhook,
    extraHeaders: parts.extraHeaders,
    body: bodyless ? null : parts.body.body,
    stream: parts.stream,
    note: bodyless ? "no body (method)" : parts.body.note,
  });
}

/** Random requests aimed at one route of the table (sometimes with another method). */
export function requestsFor(route: RouteSpec): fc.Arbitrary<RequestSpec> {
  return fc
    .tuple(
      methodArbitrary(route.method),
      pathArbitraryFor(route.path),
      route.query ? fc.oneof(queryArbitraryFor(route.query), queryArbitraryGeneric) : queryArbitraryGeneric,
      requestParts(route),
    )
    .map(([method, path, query, parts]) => assemble(method, `${path}${query}`, parts));
}

/** Random requests to paths of `paths` (any method, any headers and bodies). */
export function requestsTo(paths: fc.Arbitrary<string>): fc.Arbitrary<RequestSpec> {
  return fc
    .tuple(methodArbitrary(null), paths, queryArbitraryGeneric, requestParts(null))
    .map(([method, path, query, parts]) => assemble(method, `${path}${query}`, parts));
}

/** Short, readable form of a request for fast-check's counterexample report. */
function describeRequest(spec: RequestSpec): string {
  const body =
    spec.body === null
      ? "none"
      : `${spec.body.byteLength} bytes${spec.stream ? " (stream)" : ""}: ${JSON.stringify(
          new TextDecoder().decode(spec.body.subarray(0, 300)),
        )}`;
  return JSON.stringify({
    method: spec.method,
    target: spec.target.length > 300 ? `${spec.target.slice(0, 300)}…` : spec.target,
    auth: { label: spec.auth.label, values: spec.auth.values.map((v) => (v.length > 80 ? `${v.slice(0, 80)}…` : v)) },
    contentType: spec.contentType,
    webhook: spec.webhook,
    extraHeaders: spec.extraHeaders.map(([n, v]) => [n, v.length > 80 ? `${v.slice(0, 80)}…` : v]),
    note: spec.note,
    body,
  });
}

export function withToString(spec: RequestSpec): RequestSpec {
  return Object.assign(spec, { [fc.toStringMethod]: () => describeRequest(spec) });
}

// ---------------------------------------------------------------------------------------------
// Sending.

export interface Exchange {
  spec: RequestSpec;
  status: number;
  headers: Headers;
  text: string;
  /** Queue sends made while the request ran. */
  enqueued: number;
}

async function webhookHeaders(spec: RequestSpec): Promise<[string, string][]> {
  const { mode, id } = spec.webhook;
  if (mode === "absent") return [];
  const now = Math.floor(Date.now() / 1000);
  // Well past the tolerance, so a slow run crossing a second (or a minute) cannot bring it back in.
  const off = WEBHOOK_TOLERANCE_S + 120;
  const timestamp = mode === "stale" ? now - off : mode === "future" ? now + off : now;
  const body = spec.body ?? new Uint8Array();
  const signed = mode === "tampered" ? concatBytes(body, encoder.encode(" ")) : body;
  const secret = mode === "wrong_secret" ? OTHER_WEBHOOK_SECRET : WEBHOOK_SECRET;
  const webhookId = mode === "long_id" ? "i".repeat(257) : id;
  const signature = await signWebhook(secret, webhookId, timestamp, signed);
  const signatureHeader =
    mode === "garbage_signature"
      ? "v1,!!!not-base64"
      : mode === "wrong_version"
        ? signature.replace(/^v1,/, "v2,")
        : mode === "rotated"
          ? `v1,${btoa("an older secret's signature")} ${signature}`
          : signature;
  const headers: [string, string][] = [
    ["webhook-id", webhookId],
    [
      "webhook-timestamp",
      mode === "bad_timestamp" ? (["12a", "1e9", "-5", "0000000000000", " "][id.length % 5] ?? "x") : String(timestamp),
    ],
    ["webhook-signature", signatureHeader],
  ];
  const missing: Partial<Record<WebhookMode, string>> = {
    missing_id: "webhook-id",
    missing_timestamp: "webhook-timestamp",
    missing_signature: "webhook-signature",
  };
  return headers.filter(([name]) => missing[mode] !== name);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const chunk = 64 * 1024;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** Sends `spec` through the real edge and records the answer and the queue sends it made. */
export async function exchange(spec: RequestSpec, queues: QueueSpies): Promise<Exchange> {
  const headers = new Headers();
  for (const value of spec.auth.values) headers.append("authorization", value);
  if (spec.contentType.value !== null) headers.set("content-type", spec.contentType.value);
  for (const [name, value] of await webhookHeaders(spec)) headers.set(name, value);
  for (const [name, value] of spec.extraHeaders) headers.append(name, value);
  const body = spec.body === null ? null : spec.stream ? streamOf(spec.body) : spec.body;
  const before = queues.calls();
  const response = await exports.default.fetch(`${BASE_URL}${spec.target}`, { method: spec.method, headers, body });
  const text = await response.text();
  return { spec, status: response.status, headers: response.headers, text, enqueued: queues.calls() - before };
}

// ---------------------------------------------------------------------------------------------
// Which handler the router picks (the same table, in the same order as producers/router.ts).

export type Match =
  | { kind: "route"; route: RouteSpec }
  | { kind: "method_not_allowed"; allowed: string[] }
  | { kind: "openapi" }
  | { kind: "tenant" }
  | { kind: "none" };

const LOWER = { GET: "get", POST: "post", PUT: "put", PATCH: "patch", DELETE: "delete" } as const satisfies Record<
  Method,
  string
>;

/** itty-router with the route table's patterns, answering which entry a request reaches. */
function buildProbe() {
  const probe = Router<IRequest, [], Match>();
  const allowed = new Map<string, string[]>([["/v1/openapi.json", ["GET"]]]);
  probe.get("/v1/openapi.json", () => ({ kind: "openapi" }));
  for (const route of ROUTES) {
    probe[LOWER[route.method]](route.path, () => ({ kind: "route", route }));
    allowed.set(route.path, [...(allowed.get(route.path) ?? []), route.method]);
  }
  for (const [path, methods] of allowed) probe.all(path, () => ({ kind: "method_not_allowed", allowed: methods }));
  probe.all("/t/:project", () => ({ kind: "tenant" }));
  probe.all("/t/:project/*", () => ({ kind: "tenant" }));
  probe.all("*", () => ({ kind: "none" }));
  return probe;
}
const probe = buildProbe();

export async function matchOf(spec: RequestSpec): Promise<Match> {
  const request = new Request(`${BASE_URL}${spec.target}`, { method: spec.method });
  return probe.fetch(request);
}

// ---------------------------------------------------------------------------------------------
// The oracle.

const SNAKE_CASE = /^[a-z][a-z0-9_]*$/;

/** The body limit of a route (the contract: 25 MiB for deploys, 1 MiB for everything else). */
export function bodyLimitOf(route: RouteSpec): number {
  return route.path === "/v1/deploys" ? DEPLOY_BODY_LIMIT_BYTES : BODY_LIMIT_BYTES;
}

/**
 * What a body is to a JSON endpoint: invalid JSON (the edge's own parser says which bytes are
 * JSON it takes: UTF-8, not nested too deep), invalid for the route's schema, or valid.
 */
export function judgeBody(bytes: Uint8Array, schema: z.ZodType): "invalid_json" | "invalid_body" | "valid" {
  let json: unknown;
  try {
    json = parseJsonBytes(bytes);
  } catch {
    return "invalid_json";
  }
  return schema.safeParse(json).success ? "valid" : "invalid_body";
}

function signatureVerifies(mode: WebhookMode): boolean {
  return mode === "valid" || mode === "rotated";
}

/**
 * What must hold for any answer of the edge: never a 5xx; every non-2xx is the contract's JSON
 * error; a 4xx enqueued nothing; 405/429/401 carry their headers; the router's choice of handler
 * shows; and, for a route, the status the credential, content type, size, signature and schema
 * call for.
 */
export async function checkExchange(expect: ExpectStatic, x: Exchange): Promise<void> {
  const what = `${x.spec.method} ${x.spec.target.slice(0, 200)} → ${x.status} ${x.text.slice(0, 500)}`;
  expect(x.status, what).toBeLessThan(500);
  expect(x.status, what).toBeGreaterThanOrEqual(200);
  const head = x.spec.method.toUpperCase() === "HEAD";
  let code: string | undefined;
  if (x.status >= 300) {
    expect(x.headers.get("content-type"), what).toMatch(/^application\/json/);
    if (!head) {
      const parsed = ErrorSchema.safeParse(JSON.parse(x.text));
      expect(parsed.success, what).toBe(true);
      code = parsed.data?.error.code;
      expect(code, what).toMatch(SNAKE_CASE);
      expect(parsed.data?.error.message.length, what).toBeGreaterThan(0);
    }
  }
  if (x.status >= 400) expect(x.enqueued, `${what}: a refused request enqueued`).toBe(0);
  if (x.status === 405) expect(x.headers.get("allow"), what).toBeTruthy();
  if (x.status === 429 || x.status === 503) expect(Number(x.headers.get("retry-after")), what).toBeGreaterThan(0);
  if (x.status === 401) expect(x.headers.get("www-authenticate"), what).toMatch(/^Bearer/);

  const match = await matchOf(x.spec);
  switch (match.kind) {
    case "none":
      expect(x.status, what).toBe(404);
      return;
    case "method_not_allowed":
      expect(x.status, what).toBe(405);
      expect(x.headers.get("allow"), what).toBe(match.allowed.join(", "));
      return;
    case "openapi":
      expect(x.status, what).toBe(200);
      return;
    case "tenant":
      // No tenant is deployed here: a bad project slug is 400, any other 404.
      expect([400, 404], what).toContain(x.status);
      return;
    case "route":
      checkRoute(expect, x, match.route, what, code);
      return;
  }
}

function checkRoute(expect: ExpectStatic, x: Exchange, route: RouteSpec, what: string, code: string | undefined) {
  const { spec } = x;
  if (route.auth !== "none") {
    if (spec.auth.label === "none" || spec.auth.label === "unknown" || spec.auth.label === "malformed") {
      expect(x.status, what).toBe(401);
      return;
    }
    if (spec.auth.label !== route.auth) {
      expect(x.status, what).toBe(403);
      return;
    }
    expect([401, 403], what).not.toContain(x.status);
  }
  if (route.rateLimit) expect(x.headers.get("x-ratelimit-limit"), `${what}: rate-limit headers`).toBeTruthy();
  if (x.status === route.response.status && x.headers.get("content-type")?.startsWith("application/json")) {
    const parsed = route.response.schema.safeParse(JSON.parse(x.text));
    expect(parsed.error?.issues, `${what}: success body vs the route's response schema`).toBeUndefined();
  }
  if (!route.request || spec.body === null || spec.body.byteLength === 0) return;
  // The path names something that does not exist (e.g. an unknown queue): refused before the body is read.
  if (route.path.includes(":") && (code === "not_found" || code === "invalid_path")) return;
  // A JSON endpoint with a body: content type, then size, then (deploys) signature, then JSON and schema.
  if (spec.contentType.label !== "json") {
    expect(x.status, what).toBe(415);
    return;
  }
  if (spec.body.byteLength > bodyLimitOf(route)) {
    expect(x.status, what).toBe(413);
    return;
  }
  if (route.path === "/v1/deploys" && !signatureVerifies(spec.webhook.mode)) {
    expect(x.status, what).toBe(401);
    return;
  }
  const verdict = judgeBody(spec.body, route.request);
  if (verdict === "valid") expect([400, 413, 415], what).not.toContain(x.status);
  else {
    expect(x.status, what).toBe(400);
    expect(code, what).toBe(verdict);
  }
}

/**
 * Runs a property with the file's seed; the failure message names the seed and the counterexample.
 * Resolves to the number of runs made, for the caller to check.
 */
export async function assertProperty<T>(
  seed: number,
  numRuns: number,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  options: { endOnFailure?: boolean } = {},
): Promise<number> {
  let runs = 0;
  const counted = async (value: T) => {
    runs++;
    await predicate(value);
  };
  try {
    await fc.assert(fc.asyncProperty(arbitrary, counted), { seed, numRuns, endOnFailure: options.endOnFailure });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`seed ${seed} (the same seed reproduces this run): ${message}`, { cause: error });
  }
  return runs;
}
