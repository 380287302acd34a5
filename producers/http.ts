import type { z } from "zod";
import { BadRequest, PayloadTooLarge, UnsupportedMediaType, invalidBody } from "./errors.ts";

/** Body limits from the contract. */
export const BODY_LIMIT_BYTES = 1024 * 1024;
export const DEPLOY_BODY_LIMIT_BYTES = 25 * 1024 * 1024;

/**
 * Reads the raw body, refusing (413) as soon as it passes `limit` bytes: a declared
 * Content-Length over the limit is refused before reading, and a chunked or lying body is cut off
 * while streaming, so an unbounded body is never buffered. (`arrayBuffer()` for bodies with a
 * declared length was tried for small requests and cost more isolate time than this loop:
 * bench/investigation.md, section 7.)
 */
export async function readBodyBytes(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw new PayloadTooLarge(limit);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel("body over limit");
      throw new PayloadTooLarge(limit);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** 415 unless the request says it carries JSON (`application/json`, any parameters). */
export function requireJsonContentType(request: Request): void {
  const type = request.headers.get("content-type");
  const essence = type?.split(";")[0]?.trim().toLowerCase();
  if (essence !== "application/json") throw new UnsupportedMediaType(type);
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Deepest nesting of arrays and objects a request body may have. `JSON.parse` copes with far
 * more, but recursive code after it does not: zod's `z.json()` and the structured clone of a
 * Durable Object RPC overflow the stack a few thousand levels down (a 3 KB body became a 500, and
 * an accepted event one its shard could never store).
 */
export const MAX_JSON_DEPTH = 512;

/**
 * True when `value` nests arrays and objects deeper than `limit`. Recursive, but never more than
 * `limit` frames deep (it stops there), and it allocates nothing: it runs over every value of
 * every request body.
 */
function nestsDeeperThan(value: unknown, limit: number, depth = 0): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (depth >= limit) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (nestsDeeperThan(child, limit, depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const child: unknown = Reflect.get(value, key);
    if (nestsDeeperThan(child, limit, depth + 1)) return true;
  }
  return false;
}

/** The bytes' JSON, or undefined when they are not UTF-8 JSON (`parseJsonBytes` says why). */
export function parseJsonOrUndefined(bytes: Uint8Array): unknown {
  try {
    return parseJsonBytes(bytes);
  } catch {
    return undefined;
  }
}

/** Parses bytes as UTF-8 JSON, 400 `invalid_json` otherwise (also when nested too deep). */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new BadRequest("invalid_json", "request body is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BadRequest(
      "invalid_json",
      `request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) {
    throw new BadRequest("invalid_json", `request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return json;
}

/**
 * The whole front half of a JSON endpoint: content type, size limit while reading, JSON, schema.
 * Returns the parsed body and the raw bytes (webhook signatures are over the raw bytes).
 */
export async function readJson<S extends z.ZodType>(
  request: Request,
  schema: S,
  limit: number = BODY_LIMIT_BYTES,
): Promise<{ body: z.infer<S>; raw: Uint8Array }> {
  requireJsonContentType(request);
  const raw = await readBodyBytes(request, limit);
  const json = parseJsonBytes(raw);
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw invalidBody(parsed.error);
  return { body: parsed.data, raw };
}

/**
 * The route's path parameters (itty-router sets `params` on the request), percent-decoded and
 * checked against `schema`; 400 `invalid_path` otherwise.
 */
export function pathParams<S extends z.ZodType>(request: Request, schema: S): z.infer<S> {
  const raw: unknown = "params" in request ? request.params : undefined;
  const decoded: Record<string, string> = {};
  if (typeof raw === "object" && raw !== null) {
    for (const [name, value] of Object.entries(raw)) {
      if (typeof value !== "string") continue;
      try {
        decoded[name] = decodeURIComponent(value);
      } catch {
        throw new BadRequest("invalid_path", `path parameter ${name} is not valid percent-encoding`);
      }
    }
  }
  const parsed = schema.safeParse(decoded);
  if (!parsed.success) {
    throw new BadRequest("invalid_path", "path parameters do not match the schema", parsed.error.issues);
  }
  return parsed.data;
}

/**
 * The query string as an object (a repeated name keeps its last value), checked against `schema`;
 * 400 `invalid_query` otherwise, with the zod issues in `details`.
 */
export function queryParams<S extends z.ZodType>(request: Request, schema: S): z.infer<S> {
  const parsed = schema.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!parsed.success) {
    throw new BadRequest("invalid_query", "query parameters do not match the schema", parsed.error.issues);
  }
  return parsed.data;
}
