/**
 * The local platform's side of a tenant's R2 binding (docs/decisions/0017-14-tenant-resources.md): every
 * tenant bucket lives in one real Miniflare R2 bucket (`TENANT_R2`, which holds nothing but tenant
 * data) under the key prefix `<bucket name>/`. This loopback entrypoint is what the tenant's env
 * holds (wrapped in the R2 API by platform/local/r2-shim.ts); its props carry the bucket name, so
 * a tenant reaches only its own prefix: keys are prefixed on the way in and the prefix is stripped
 * from every key and delimited prefix on the way out.
 */
import { WorkerEntrypoint, exports } from "cloudflare:workers";
import { describeError } from "../lib/log.ts";
import { assertNever } from "../lib/result.ts";
import { R2_HEADER, type R2Request, R2RequestSchema, type R2Response, type R2WireObject } from "./r2-protocol.ts";

export interface R2BindingProps {
  bucket: string;
}

/** The key prefix of a bucket inside `TENANT_R2`. Bucket names have no `/`, so prefixes never nest. */
export function bucketPrefix(bucket: string): string {
  return `${bucket}/`;
}

type Put = Extract<R2Request, { op: "put" }>;
type Get = Extract<R2Request, { op: "get" }>;

function conditional(value: NonNullable<Get["onlyIf"]>): R2Conditional | Headers {
  if ("headers" in value) return new Headers(value.headers);
  const { uploadedBefore, uploadedAfter, ...rest } = value;
  return {
    ...rest,
    ...(uploadedBefore === undefined ? {} : { uploadedBefore: new Date(uploadedBefore) }),
    ...(uploadedAfter === undefined ? {} : { uploadedAfter: new Date(uploadedAfter) }),
  };
}

function httpMetadata(value: NonNullable<Put["httpMetadata"]>): R2HTTPMetadata | Headers {
  if ("headers" in value) return new Headers(value.headers);
  const { cacheExpiry, ...rest } = value;
  return { ...rest, ...(cacheExpiry === undefined ? {} : { cacheExpiry: new Date(cacheExpiry) }) };
}

function range(value: NonNullable<Get["range"]>): R2Range | Headers {
  return "headers" in value ? new Headers(value.headers) : value;
}

function wire(object: R2Object, prefix: string): R2WireObject {
  const http: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(object.httpMetadata ?? {})) {
    if (value instanceof Date) http[key] = value.getTime();
    else if (typeof value === "string") http[key] = value;
  }
  return {
    key: object.key.slice(prefix.length),
    version: object.version,
    size: object.size,
    etag: object.etag,
    httpEtag: object.httpEtag,
    uploaded: object.uploaded.getTime(),
    httpMetadata: http,
    customMetadata: object.customMetadata ?? {},
    checksums: Object.fromEntries(
      Object.entries(object.checksums.toJSON()).filter(
        (entry): entry is [string, string] => typeof entry[1] === "string",
      ),
    ),
    storageClass: object.storageClass,
    ...(object.range === undefined ? {} : { range: object.range }),
  };
}

/** Every key of a bucket, page by page (for its size and for `down`). */
export async function* bucketObjects(bucket: R2Bucket, name: string): AsyncGenerator<R2Object[]> {
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: bucketPrefix(name), ...(cursor === undefined ? {} : { cursor }) });
    yield page.objects;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
}

function answerWith(value: R2Response): Response {
  return Response.json(value);
}

/** Names the bucket of a call forwarded from the tenant runtime to `TenantR2Store`. */
const BUCKET_HEADER = "x-shipyard-r2-bucket";

/**
 * A tenant's R2 binding on the local platform. In the tenant runtime (process B) it forwards the
 * call to the control plane's `TenantR2Store` with the bucket of its props (set by the platform,
 * never by the tenant: the header is overwritten); where `TENANT_R2` is bound it answers itself.
 */
export class TenantR2Binding extends WorkerEntrypoint<Env, R2BindingProps> {
  override async fetch(request: Request): Promise<Response> {
    const store = this.env.TENANT_R2_STORE;
    if (store !== undefined) {
      const headers = new Headers(request.headers);
      headers.set(BUCKET_HEADER, this.ctx.props.bucket);
      return store.fetch(request.url, { method: "POST", headers, body: request.body });
    }
    return answerR2(this.env, this.ctx.props.bucket, request);
  }
}

/**
 * The control plane's side of the tenant runtime's R2 bindings (wrangler.tenants.toml binds it as
 * `TENANT_R2_STORE`). Reachable only by that process's service binding: it is no route of the
 * control plane's HTTP API, and a tenant holds only its own `TenantR2Binding`.
 */
export class TenantR2Store extends WorkerEntrypoint<Env> {
  override async fetch(request: Request): Promise<Response> {
    const bucket = request.headers.get(BUCKET_HEADER) ?? "";
    if (bucket === "" || bucket.includes("/")) {
      const answer: R2Response = { ok: false, error: "R2 request refused: no bucket" };
      return Response.json(answer, { status: 400 });
    }
    return answerR2(this.env, bucket, request);
  }
}

/** One R2 call of the shim for `bucket`, against `TENANT_R2`. */
async function answerR2(env: Env, bucket: string, request: Request): Promise<Response> {
  {
    let raw: unknown = null;
    try {
      raw = JSON.parse(request.headers.get(R2_HEADER) ?? "null");
    } catch {
      // answered below as a refused request
    }
    const parsed = R2RequestSchema.safeParse(raw);
    if (!parsed.success) {
      const answer: R2Response = { ok: false, error: `R2 request refused: ${parsed.error.issues[0]?.message ?? ""}` };
      return Response.json(answer, { status: 400 });
    }
    try {
      return await handle(env, bucket, parsed.data, request);
    } catch (error) {
      // R2's own errors ("put: ... (10012)") reach the tenant as they are.
      const answer: R2Response = { ok: false, error: error instanceof Error ? error.message : describeError(error) };
      return Response.json(answer);
    }
  }
}

async function handle(env: Env, name: string, call: R2Request, request: Request): Promise<Response> {
  {
    const bucket = env.TENANT_R2;
    const prefix = bucketPrefix(name);
    switch (call.op) {
      case "head": {
        const object = await bucket.head(prefix + call.key);
        return answerWith({ ok: true, object: object === null ? null : wire(object, prefix) });
      }
      case "get": {
        const options: R2GetOptions = {
          ...(call.onlyIf === undefined ? {} : { onlyIf: conditional(call.onlyIf) }),
          ...(call.range === undefined ? {} : { range: range(call.range) }),
        };
        const object = await bucket.get(prefix + call.key, options);
        if (object === null) return answerWith({ ok: true, object: null });
        const meta = wire(object, prefix);
        if (!("body" in object)) return answerWith({ ok: true, object: meta, body: false });
        const header: R2Response = { ok: true, object: meta, body: true };
        return new Response(object.body, { headers: { [R2_HEADER]: encodeURIComponent(JSON.stringify(header)) } });
      }
      case "put": {
        const { op: _op, key, httpMetadata: http, onlyIf, ...rest } = call;
        const options: R2PutOptions = {
          ...rest,
          ...(http === undefined ? {} : { httpMetadata: httpMetadata(http) }),
          ...(onlyIf === undefined ? {} : { onlyIf: conditional(onlyIf) }),
        };
        const object = await bucket.put(prefix + key, await request.arrayBuffer(), options);
        return answerWith({ ok: true, object: object === null ? null : wire(object, prefix) });
      }
      case "delete":
        if (call.keys.length > 0) await bucket.delete(call.keys.map((key) => prefix + key));
        return answerWith({ ok: true, done: true });
      case "list": {
        const page = await bucket.list({
          prefix: prefix + (call.prefix ?? ""),
          ...(call.cursor === undefined ? {} : { cursor: call.cursor }),
          ...(call.delimiter === undefined ? {} : { delimiter: call.delimiter }),
          ...(call.startAfter === undefined ? {} : { startAfter: prefix + call.startAfter }),
          ...(call.limit === undefined ? {} : { limit: call.limit }),
          ...(call.include === undefined ? {} : { include: call.include }),
        });
        return answerWith({
          ok: true,
          list: {
            objects: page.objects.map((object) => wire(object, prefix)),
            truncated: page.truncated,
            ...(page.truncated ? { cursor: page.cursor } : {}),
            delimitedPrefixes: page.delimitedPrefixes.map((p) => p.slice(prefix.length)),
          },
        });
      }
      default:
        return assertNever(call);
    }
  }
}

/** The R2 binding stub for a bucket. */
export function r2Binding(props: R2BindingProps): Fetcher {
  return exports.TenantR2Binding({ props });
}
