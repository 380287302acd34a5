/**
 * The fake's R2 buckets (the account-level R2 API), with the real API's rules:
 *   - names as wrangler checks them (isValidR2BucketName: 3..63 of [a-z0-9-], alphanumeric at both
 *     ends), else 400 code 10005 InvalidBucketName;
 *   - a bucket that does not exist is 404 code 10006 NoSuchBucket (what wrangler's provisioning and
 *     pipelines setup read as "not there": cloudflare/workers-sdk packages/wrangler/src/r2);
 *   - creating a name already taken is 409 code 10073 BucketConflict, deleting a bucket that still
 *     holds objects is 409 code 10008 BucketNotEmpty (developers.cloudflare.com/r2/api/error-codes).
 * Objects are kept (key, bytes, upload time) so a bucket can be filled, listed, emptied and sized;
 * the listing pages by `per_page` (1..1000) and `start_after`, as the API's object listing does.
 *   GET    /accounts/:id/r2/buckets                      {buckets: [...]}
 *   POST   /accounts/:id/r2/buckets                      create {name}
 *   GET    /accounts/:id/r2/buckets/:name                details
 *   DELETE /accounts/:id/r2/buckets/:name                delete (empty only)
 *   GET    /accounts/:id/r2/buckets/:name/objects        list ?per_page=&start_after=&prefix=
 *   PUT    /accounts/:id/r2/buckets/:name/objects/:key   upload (the body)
 *   DELETE /accounts/:id/r2/buckets/:name/objects/:key   delete
 */
import { createHash } from "node:crypto";
import type { D1Answer } from "./d1.ts";

export const R2_PATH =
  /^\/accounts\/(?<account>[^/]+)\/r2\/buckets(?:\/(?<bucket>[^/]+)(?:\/(?<objects>objects)(?:\/(?<key>.+))?)?)?$/;

const NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

interface FakeObject {
  key: string;
  size: number;
  etag: string;
  uploaded: string;
}

interface FakeBucket {
  name: string;
  creation_date: string;
  objects: Map<string, FakeObject>;
}

const noSuchBucket = (name: string): D1Answer => ({
  ok: false,
  status: 404,
  code: 10006,
  message: `The specified bucket does not exist. (bucket ${name})`,
});

export class FakeR2 {
  readonly #buckets = new Map<string, FakeBucket>();

  /** Whether the account has this bucket (what a Worker's r2_bucket binding must name). */
  exists(account: string, name: string): boolean {
    return this.#buckets.has(`${account}/${name}`);
  }

  handle(method: string, url: URL, groups: Record<string, string | undefined>, body: Buffer): D1Answer {
    const account = groups["account"] ?? "";
    const name = groups["bucket"] === undefined ? undefined : decodeURIComponent(groups["bucket"]);
    if (name === undefined) {
      if (method === "GET") {
        const contains = url.searchParams.get("name_contains");
        const buckets = [...this.#buckets]
          .filter(
            ([key, bucket]) => key.startsWith(`${account}/`) && (contains === null || bucket.name.includes(contains)),
          )
          .map(([, bucket]) => ({ name: bucket.name, creation_date: bucket.creation_date }));
        return { ok: true, result: { buckets } };
      }
      if (method === "POST") return this.#create(account, body.toString("utf8"));
      return notAllowed(method);
    }
    const bucket = this.#buckets.get(`${account}/${name}`);
    if (bucket === undefined) return noSuchBucket(name);
    if (groups["objects"] === undefined) {
      if (method === "GET") return { ok: true, result: details(bucket) };
      if (method === "DELETE") {
        if (bucket.objects.size > 0) {
          return { ok: false, status: 409, code: 10008, message: "The bucket you tried to delete is not empty." };
        }
        this.#buckets.delete(`${account}/${name}`);
        return { ok: true, result: {} };
      }
      return notAllowed(method);
    }
    const key = groups["key"] === undefined ? undefined : decodeURIComponent(groups["key"]);
    if (key === undefined) {
      if (method !== "GET") return notAllowed(method);
      const perPage = Number(url.searchParams.get("per_page") ?? "1000");
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > 1000) {
        return { ok: false, status: 400, code: 10001, message: "per_page must be 1..1000" };
      }
      const after = url.searchParams.get("start_after") ?? "";
      const prefix = url.searchParams.get("prefix") ?? "";
      const objects = [...bucket.objects.values()]
        .filter((object) => object.key > after && object.key.startsWith(prefix))
        .toSorted((a, b) => (a.key < b.key ? -1 : 1))
        .slice(0, perPage)
        .map((object) => ({ key: object.key, size: object.size, etag: object.etag, last_modified: object.uploaded }));
      return { ok: true, result: objects };
    }
    if (method === "PUT") {
      const object: FakeObject = {
        key,
        size: body.byteLength,
        etag: createHash("md5").update(body).digest("hex"),
        uploaded: new Date().toISOString(),
      };
      bucket.objects.set(key, object);
      return { ok: true, result: { key, size: String(object.size), etag: object.etag, uploaded: object.uploaded } };
    }
    if (method === "DELETE") {
      bucket.objects.delete(key);
      return { ok: true, result: { key } };
    }
    return notAllowed(method);
  }

  #create(account: string, body: string): D1Answer {
    const parsed: unknown = JSON.parse(body || "{}");
    const name = typeof parsed === "object" && parsed !== null && "name" in parsed ? parsed.name : undefined;
    if (typeof name !== "string" || !NAME.test(name)) {
      return {
        ok: false,
        status: 400,
        code: 10005,
        message:
          "The specified bucket name is not valid. Bucket names must begin and end with an alphanumeric character, only contain lowercase letters, numbers, and hyphens, and be between 3 and 63 characters long.",
      };
    }
    if (this.#buckets.has(`${account}/${name}`)) {
      return { ok: false, status: 409, code: 10073, message: "The bucket you tried to create already exists." };
    }
    const bucket: FakeBucket = { name, creation_date: new Date().toISOString(), objects: new Map() };
    this.#buckets.set(`${account}/${name}`, bucket);
    return { ok: true, result: details(bucket) };
  }
}

function details(bucket: FakeBucket) {
  return { name: bucket.name, creation_date: bucket.creation_date, location: "ENAM", storage_class: "Standard" };
}

function notAllowed(method: string): D1Answer {
  return { ok: false, status: 405, code: 10405, message: `Method ${method} not allowed here (fake)` };
}
