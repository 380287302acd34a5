/**
 * The fake's KV namespaces (the account-level Workers KV API), with the real API's rules as
 * wrangler relies on them (cloudflare/workers-sdk packages/wrangler/src/kv/helpers.ts: namespaces
 * are listed in pages, `per_page` up to 100, with no filter by title; create takes `{title}`; a
 * title already taken is error code 10014 "a namespace with this account ID and title already
 * exists"). Only namespaces: the pairs live in the Worker's binding, which this fake does not run.
 *   GET  /accounts/:id/storage/kv/namespaces?page=&per_page=
 *   POST /accounts/:id/storage/kv/namespaces   {title}
 *   DELETE /accounts/:id/storage/kv/namespaces/:namespace   (404 when there is none)
 */
import { randomUUID } from "node:crypto";
import type { D1Answer } from "./d1.ts";

export const KV_PATH = /^\/accounts\/(?<account>[^/]+)\/storage\/kv\/namespaces(?:\/(?<namespace>[0-9a-f]+))?$/;

export class FakeKV {
  /** Namespaces by account, in creation order. */
  readonly #namespaces = new Map<string, { id: string; title: string }[]>();

  /** Whether the account has a namespace with this id (what a Worker's kv_namespace binding must name). */
  exists(account: string, id: string): boolean {
    return (this.#namespaces.get(account) ?? []).some((namespace) => namespace.id === id);
  }

  handle(method: string, url: URL, groups: Record<string, string | undefined>, body: string): D1Answer {
    const account = groups["account"] ?? "";
    const namespaces = this.#namespaces.get(account) ?? [];
    const id = groups["namespace"];
    if (id !== undefined) {
      if (method !== "DELETE")
        return { ok: false, status: 405, code: 10405, message: `Method ${method} not allowed here (fake)` };
      if (!namespaces.some((namespace) => namespace.id === id)) {
        return { ok: false, status: 404, code: 10013, message: "namespace not found (fake)" };
      }
      this.#namespaces.set(
        account,
        namespaces.filter((namespace) => namespace.id !== id),
      );
      return { ok: true, result: null };
    }
    if (method === "GET") {
      const perPage = Number(url.searchParams.get("per_page") ?? "20");
      const page = Number(url.searchParams.get("page") ?? "1");
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > 100 || !Number.isInteger(page) || page < 1) {
        return { ok: false, status: 400, code: 10001, message: "per_page must be 1..100 and page at least 1" };
      }
      return { ok: true, result: namespaces.slice((page - 1) * perPage, page * perPage) };
    }
    if (method === "POST") {
      const parsed: unknown = JSON.parse(body || "{}");
      const title = typeof parsed === "object" && parsed !== null && "title" in parsed ? parsed.title : undefined;
      if (typeof title !== "string" || title.length === 0 || title.length > 512) {
        return { ok: false, status: 400, code: 10019, message: "title is required (1..512 characters)" };
      }
      if (namespaces.some((namespace) => namespace.title === title)) {
        return {
          ok: false,
          status: 400,
          code: 10014,
          message: "a namespace with this account ID and title already exists",
        };
      }
      const created = { id: randomUUID().replaceAll("-", ""), title };
      this.#namespaces.set(account, [...namespaces, created]);
      return { ok: true, result: created };
    }
    return { ok: false, status: 405, code: 10405, message: `Method ${method} not allowed here (fake)` };
  }
}
